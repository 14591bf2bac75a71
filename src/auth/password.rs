//! Password hashing (argon2id, bounded concurrency, off the async workers) and the password policy.

use std::sync::Arc;

use std::cell::RefCell;

use argon2::password_hash::{Output, ParamsString, PasswordHash, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};

use crate::http::ApiError;

/// Minimum and maximum password length in characters.
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

static COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// The least zxcvbn score accepted (0–4): 3 means more than 10^8 guesses, "safely unguessable"
/// against an online attacker and a slow hash offline.
pub const MIN_SCORE: u8 = 3;

/// zxcvbn looks at this many characters at most: a longer password is judged by its start
/// (its cost grows quickly with length, and a start that is hard to guess makes the whole so).
const SCORED_CHARS: usize = 64;

/// Checks the password policy (NIST SP 800-63B: length, a blocklist, no composition rules):
/// 8–128 characters; not one of the most common passwords; not the email address; and hard to
/// guess as [zxcvbn](https://docs.rs/zxcvbn) estimates it — its frequency lists of leaked
/// passwords, names and words, keyboard patterns, repeats, sequences and dates, with the email
/// address and its parts as words an attacker knows — at least [`MIN_SCORE`].
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
    let mut known: Vec<&str> = Vec::new();
    if let Some(email) = email {
        known.push(email);
        known.extend(
            email
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.len() >= 3),
        );
    }
    let scored: String = password.chars().take(SCORED_CHARS).collect();
    let estimate = zxcvbn::zxcvbn(&scored, &known);
    if u8::from(estimate.score()) < MIN_SCORE {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        return Err(ApiError::unprocessable(
            "weak_password",
            format!(
                "this password is too easy to guess{hint}; a few unrelated words make a strong one"
            ),
        ));
    }
    Ok(())
}

/// [`check_policy`] on the blocking pool: estimating a long password takes milliseconds.
pub async fn check_policy_off_thread(
    password: &SecretString,
    email: Option<String>,
) -> Result<(), ApiError> {
    let password = password.clone();
    actix_web::web::block(move || check_policy(password.expose_secret(), email.as_deref())).await?
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// When the stored hash used weaker parameters than today's: a new hash to store.
    pub rehashed: Option<String>,
}

/// Hashes and verifies passwords with argon2id on `permits` dedicated threads (about the number
/// of cores), never on the async workers.
///
/// Dedicated threads rather than the blocking pool: each argon2 run allocates its whole memory
/// cost (19 MiB) at once, and the allocator keeps that block in the arena of the thread that
/// freed it. Spread over the blocking pool's many threads that grew the server to 600+ MiB
/// after a thousand logins; on a few long-lived threads it stays a few times 19 MiB.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    jobs: std::sync::mpsc::SyncSender<Job>,
    dummy_hash: Arc<String>,
}

type Job = Box<dyn FnOnce() + Send>;

/// Starts `threads` hashing threads that take jobs from one queue.
fn hashing_threads(threads: usize) -> std::sync::mpsc::SyncSender<Job> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(1024);
    let rx = Arc::new(std::sync::Mutex::new(rx));
    for i in 0..threads.max(1) {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || loop {
                let job = match rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            })
            .expect("spawn a password hashing thread");
    }
    tx
}

impl Passwords {
    /// Uses `memory_kib` and `iterations` (parallelism 1); `permits` bounds concurrent hashing.
    pub fn new(memory_kib: u32, iterations: u32, permits: usize) -> Self {
        let params = Params::new(memory_kib, iterations, 1, None).expect("valid argon2 params");
        // On a short-lived thread, so its working memory goes when the thread does.
        let dummy = {
            let params = params.clone();
            std::thread::spawn(move || hash_with(&params, "laddkoll-dummy-password-for-timing"))
                .join()
                .expect("hashing the dummy password")
        };
        Passwords {
            params,
            jobs: hashing_threads(permits),
            dummy_hash: Arc::new(dummy),
        }
    }

    /// Runs `f` on a hashing thread and waits for it without blocking the async worker.
    async fn on_hashing_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        let jobs = self.jobs.clone();
        // The queue is bounded: when it is full, wait for room off the async worker.
        match jobs.try_send(job) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(job)) => {
                actix_web::web::block(move || jobs.send(job))
                    .await?
                    .map_err(|_| closed())?;
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return Err(closed()),
        }
        result.await.map_err(|_| closed())
    }

    /// Hashes a password into a PHC string.
    pub async fn hash(&self, password: SecretString) -> Result<String, ApiError> {
        let params = self.params.clone();
        self.on_hashing_thread(move || hash_with(&params, password.expose_secret()))
            .await
    }

    /// Verifies a password against a stored hash; with no hash (unknown account) it verifies
    /// against a dummy so the answer takes the same time.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verified, ApiError> {
        let params = self.params.clone();
        let dummy = self.dummy_hash.clone();
        self.on_hashing_thread(move || {
            let known = stored.is_some();
            let phc = stored.unwrap_or_else(|| dummy.to_string());
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return Verified {
                    ok: false,
                    rehashed: None,
                };
            };
            let ok = verify_with(&parsed, password.expose_secret().as_bytes()) && known;
            let rehashed = (ok && weaker_than(&parsed, &params))
                .then(|| hash_with(&params, password.expose_secret()));
            Verified { ok, rehashed }
        })
        .await
    }
}

fn closed() -> ApiError {
    ApiError::Unavailable("password hashing is shutting down".into())
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

thread_local! {
    /// The argon2 working memory of this thread, allocated once and reused: a fresh 19 MiB per
    /// hash fragments the allocator's heap, and the server grew by ~0.8 MiB per login.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs argon2 in the thread's reusable working memory.
fn compute(
    argon: &Argon2<'_>,
    blocks: usize,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> bool {
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() != blocks {
            *memory = vec![Block::default(); blocks];
        }
        argon
            .hash_password_into_with_memory(password, salt, out, &mut memory[..])
            .is_ok()
    })
}

fn hash_with(params: &Params, password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    let mut raw = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut raw)
        .expect("a generated salt decodes");
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    assert!(
        compute(
            &argon2(params),
            params.block_count(),
            password.as_bytes(),
            salt_bytes,
            &mut out
        ),
        "argon2 hashing with valid params cannot fail"
    );
    PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).expect("valid params encode"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).expect("a 32-byte output")),
    }
    .to_string()
}

/// Verifies against a stored PHC string; argon2id in the reusable memory, anything older
/// through the crate's own verifier.
fn verify_with(parsed: &PasswordHash<'_>, password: &[u8]) -> bool {
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return Argon2::default().verify_password(password, parsed).is_ok();
    }
    let Ok(params) = Params::try_from(parsed) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut raw = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut raw) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(Algorithm::Argon2id, version, params.clone());
    // Output's equality is constant-time.
    compute(&argon, params.block_count(), password, salt_bytes, &mut out)
        && Output::new(&out).is_ok_and(|o| o == expected)
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
        assert!(check_policy("kalle anka 1934 vid sjön", None).is_ok());
    }

    #[test]
    fn policy_refuses_what_the_review_got_accepted() {
        // Eight spaces, one letter repeated, a season and a year: all passed a 144-entry list.
        for weak in [
            "        ",
            "aaaaaaaa",
            "Summer2024!",
            "P@ssw0rd!",
            "zaq12wsx",
            "abcdefgh12",
        ] {
            let e = check_policy(weak, None).unwrap_err();
            assert!(
                matches!(
                    e,
                    ApiError::Unprocessable {
                        code: "weak_password",
                        ..
                    }
                ),
                "{weak:?}"
            );
        }
        // The email's parts are words an attacker knows.
        assert!(check_policy("anna.andersson", None).is_ok());
        assert!(check_policy("anna.andersson", Some("anna.andersson@example.se")).is_err());
        // Long passwords are judged by their first 64 characters, quickly.
        let started = std::time::Instant::now();
        assert!(check_policy(&"a".repeat(128), None).is_err());
        assert!(check_policy(&"é".repeat(128), None).is_err());
        let long: String = (0..128u32)
            .map(|i| char::from(b'!' + ((i * 37 + 11) % 94) as u8))
            .collect();
        assert!(check_policy(&long, None).is_ok());
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
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

#[cfg(test)]
mod reusable_memory_tests {
    use super::*;
    use argon2::password_hash::PasswordHasher;

    fn params() -> Params {
        Params::new(1024, 1, 1, None).unwrap()
    }

    #[test]
    fn hashes_interoperate_with_the_crates_own_hasher_and_verifier() {
        let ours = hash_with(&params(), "correct horse");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2(&params())
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(argon2(&params())
            .verify_password(b"wrong horse", &parsed)
            .is_err());

        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2(&params())
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        let parsed = PasswordHash::new(&theirs).unwrap();
        assert!(verify_with(&parsed, b"battery staple"));
        assert!(!verify_with(&parsed, b"battery stapler"));
        // A hash of other parameters (the memory is resized) still verifies.
        let stronger = hash_with(&Params::new(2048, 2, 1, None).unwrap(), "x y z w");
        assert!(verify_with(
            &PasswordHash::new(&stronger).unwrap(),
            b"x y z w"
        ));
        assert!(verify_with(
            &PasswordHash::new(&ours).unwrap(),
            b"correct horse"
        ));
    }
}
