//! Password hashing (argon2id, bounded concurrency, off the async workers) and the password policy.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::http::ApiError;

/// Minimum and maximum password length in characters.
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

static COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// Checks the password policy: 8–128 characters, not one of the most common passwords, not the
/// email address.
pub fn check_policy(password: &str, email: Option<&str>) -> Result<(), ApiError> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(ApiError::unprocessable(
            "weak_password",
            format!("password must have at least {MIN_LEN} characters"),
        ));
    }
    if len > MAX_LEN {
        return Err(ApiError::unprocessable(
            "weak_password",
            format!("password must have at most {MAX_LEN} characters"),
        ));
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.lines().any(|common| common == lower) {
        return Err(ApiError::unprocessable(
            "weak_password",
            "this password is among the most common passwords; choose another",
        ));
    }
    if email.is_some_and(|e| e.eq_ignore_ascii_case(password)) {
        return Err(ApiError::unprocessable(
            "weak_password",
            "the password must not be your email address",
        ));
    }
    Ok(())
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// When the stored hash used weaker parameters than today's: a new hash to store.
    pub rehashed: Option<String>,
}

/// Hashes and verifies passwords with argon2id, at most `permits` at a time (about the number
/// of cores), each on the blocking pool.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<String>,
}

impl Passwords {
    /// Uses `memory_kib` and `iterations` (parallelism 1); `permits` bounds concurrent hashing.
    pub fn new(memory_kib: u32, iterations: u32, permits: usize) -> Self {
        let params = Params::new(memory_kib, iterations, 1, None).expect("valid argon2 params");
        let dummy = hash_with(&params, "laddkoll-dummy-password-for-timing");
        Passwords {
            params,
            permits: Arc::new(Semaphore::new(permits.max(1))),
            dummy_hash: Arc::new(dummy),
        }
    }

    /// Hashes a password into a PHC string.
    pub async fn hash(&self, password: SecretString) -> Result<String, ApiError> {
        let _permit = self.permits.acquire().await.map_err(|_| closed())?;
        let params = self.params.clone();
        Ok(actix_web::web::block(move || hash_with(&params, password.expose_secret())).await?)
    }

    /// Verifies a password against a stored hash; with no hash (unknown account) it verifies
    /// against a dummy so the answer takes the same time.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verified, ApiError> {
        let _permit = self.permits.acquire().await.map_err(|_| closed())?;
        let params = self.params.clone();
        let dummy = self.dummy_hash.clone();
        Ok(actix_web::web::block(move || {
            let known = stored.is_some();
            let phc = stored.unwrap_or_else(|| dummy.to_string());
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return Verified {
                    ok: false,
                    rehashed: None,
                };
            };
            let ok = argon2(&params)
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok()
                && known;
            let rehashed = (ok && weaker_than(&parsed, &params))
                .then(|| hash_with(&params, password.expose_secret()));
            Verified { ok, rehashed }
        })
        .await?)
    }
}

fn closed() -> ApiError {
    ApiError::Unavailable("password hashing is shutting down".into())
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2(params)
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid params cannot fail")
        .to_string()
}

fn weaker_than(hash: &PasswordHash<'_>, current: &Params) -> bool {
    if hash.algorithm.as_str() != "argon2id" {
        return true;
    }
    match Params::try_from(hash) {
        Ok(p) => {
            p.m_cost() < current.m_cost()
                || p.t_cost() < current.t_cost()
                || p.p_cost() < current.p_cost()
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_refuses_short_long_and_common_passwords() {
        assert!(check_policy("short", None).is_err());
        assert!(check_policy(&"x".repeat(129), None).is_err());
        assert!(check_policy("Password1", None).is_err());
        assert!(check_policy("qwertyuiop", None).is_err());
        assert!(check_policy("a@b.se", Some("a@b.se")).is_err());
        assert!(check_policy("correct horse battery staple", None).is_ok());
        assert!(check_policy(&"é".repeat(128), None).is_ok());
    }

    #[actix_rt::test]
    async fn verify_detects_weaker_parameters_and_unknown_accounts() {
        let weak = Params::new(8, 1, 1, None).unwrap();
        let old = hash_with(&weak, "correct horse battery");
        let passwords = Passwords::new(19_456, 2, 2);
        let v = passwords
            .verify("correct horse battery".to_string().into(), Some(old))
            .await
            .unwrap();
        assert!(v.ok);
        let rehashed = v.rehashed.expect("a weak hash is replaced");
        assert!(rehashed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let fresh = passwords
            .hash("correct horse battery".to_string().into())
            .await
            .unwrap();
        assert!(fresh.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let v = passwords
            .verify("correct horse battery".to_string().into(), Some(fresh))
            .await
            .unwrap();
        assert_eq!(
            v,
            Verified {
                ok: true,
                rehashed: None
            }
        );
        let v = passwords
            .verify(
                "laddkoll-dummy-password-for-timing".to_string().into(),
                None,
            )
            .await
            .unwrap();
        assert!(!v.ok, "the dummy hash never admits anyone");
    }
}
