//! Accounts and authentication through the real app (DESIGN §3–4).

mod common;

use common::{spawn_app, spawn_app_with, PASSWORD};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

#[actix_rt::test]
async fn a_new_driver_registers_logs_in_reads_me_refreshes_and_logs_out() {
    let app = spawn_app().await;
    let reg = app
        .post(
            "/auth/register",
            json!({"email": " Anna@Example.SE ", "password": PASSWORD, "name": "Anna"}),
            None,
        )
        .await;
    assert_eq!(reg.status, 201);
    assert_eq!(reg.body["email"], "anna@example.se");
    assert_eq!(reg.body["role"], "driver");
    assert!(reg.body.get("password").is_none() && reg.body.get("password_hash").is_none());

    let login = app.login("anna@example.se", PASSWORD).await;
    assert_eq!(login.status, 200);
    assert_eq!(login.body["token_type"], "Bearer");
    assert_eq!(login.body["expires_in"], 900);
    let access = login.body["access_token"].as_str().unwrap();
    let refresh = login.body["refresh_token"].as_str().unwrap();

    let me = app.get("/me", Some(access)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["id"], reg.body["id"]);
    assert_eq!(me.body["name"], "Anna");

    let refreshed = app
        .post("/auth/refresh", json!({"refresh_token": refresh}), None)
        .await;
    assert_eq!(refreshed.status, 200);
    let new_refresh = refreshed.body["refresh_token"].as_str().unwrap();
    assert_ne!(new_refresh, refresh, "refresh tokens rotate on every use");
    let me = app
        .get("/me", refreshed.body["access_token"].as_str())
        .await;
    assert_eq!(me.status, 200);

    let out = app
        .post("/auth/logout", json!({"refresh_token": new_refresh}), None)
        .await;
    assert_eq!(out.status, 204);
    let after = app
        .post("/auth/refresh", json!({"refresh_token": new_refresh}), None)
        .await;
    assert_eq!(after.status, 401);
    assert_eq!(after.code(), "invalid_refresh_token");

    let id = reg.body["id"].as_i64().unwrap();
    let actions = app.audit_actions(id).await;
    assert_eq!(actions, ["account_registered", "login_succeeded", "logout"]);
}

#[actix_rt::test]
async fn registration_refuses_bad_emails_names_weak_passwords_and_taken_emails() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": PASSWORD, "name": "A"}),
            "invalid_email",
        ),
        (
            json!({"email": "a@b.se", "password": "short", "name": "A"}),
            "weak_password",
        ),
        (
            json!({"email": "a@b.se", "password": "password123", "name": "A"}),
            "weak_password",
        ),
        (
            json!({"email": "a@b.se", "password": "x".repeat(129), "name": "A"}),
            "weak_password",
        ),
        (
            json!({"email": "a@b.se", "password": PASSWORD, "name": "   "}),
            "invalid_name",
        ),
    ];
    for (body, code) in cases {
        let a = app.post("/auth/register", body.clone(), None).await;
        assert_eq!((a.status, a.code()), (422, code), "{body}");
    }
    let a = app
        .post(
            "/auth/register",
            json!({"email": "a@b.se", "password": "password123", "name": "A"}),
            None,
        )
        .await;
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("most common"));
    app.register("taken@example.se").await;
    let dup = app
        .post(
            "/auth/register",
            json!({"email": "TAKEN@example.se", "password": PASSWORD, "name": "B"}),
            None,
        )
        .await;
    assert_eq!((dup.status, dup.code()), (409, "email_taken"));
}

#[actix_rt::test]
async fn login_answers_the_same_for_an_unknown_account_and_a_wrong_password() {
    let app = spawn_app().await;
    app.register("known@example.se").await;
    let unknown = app.login("nobody@example.se", PASSWORD).await;
    let wrong = app.login("known@example.se", "wrong password here").await;
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(unknown.body, wrong.body);
    assert_eq!(unknown.code(), "invalid_credentials");
}

#[actix_rt::test]
async fn brute_force_locks_the_account_even_against_the_right_password() {
    let app = spawn_app().await;
    let id = app.register("victim@example.se").await;
    for _ in 0..5 {
        let a = app.login("victim@example.se", "guess guess guess").await;
        assert_eq!(a.status, 401);
    }
    // Locked now: the right password gets the same uniform answer.
    let a = app.login("victim@example.se", PASSWORD).await;
    assert_eq!((a.status, a.code()), (401, "invalid_credentials"));
    let actions = app.audit_actions(id).await;
    assert_eq!(actions.iter().filter(|a| *a == "login_failed").count(), 5);
    assert!(
        actions.contains(&"account_locked".to_string()),
        "{actions:?}"
    );
    assert_eq!(actions.last().unwrap(), "login_refused");
}

#[actix_rt::test]
async fn the_lock_grows_exponentially_and_ends() {
    let app = spawn_app_with(|c| {
        c.lockout_threshold = 2;
        c.lockout_base = std::time::Duration::from_secs(1);
    })
    .await;
    app.register("slow@example.se").await;
    assert_eq!(laddkoll::auth::lock_duration(&app.state, 1), None);
    assert_eq!(
        laddkoll::auth::lock_duration(&app.state, 2),
        Some(std::time::Duration::from_secs(1))
    );
    assert_eq!(
        laddkoll::auth::lock_duration(&app.state, 4),
        Some(std::time::Duration::from_secs(4))
    );
    assert_eq!(
        laddkoll::auth::lock_duration(&app.state, 40),
        Some(app.state.config.lockout_max)
    );
    for _ in 0..2 {
        app.login("slow@example.se", "guess guess guess").await;
    }
    assert_eq!(app.login("slow@example.se", PASSWORD).await.status, 401);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        app.login("slow@example.se", PASSWORD).await.status,
        200,
        "the lock expires"
    );
}

#[actix_rt::test]
async fn too_many_auth_requests_from_one_address_get_429_with_retry_after() {
    let app = spawn_app_with(|c| c.auth_rate_per_minute = 3).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(app.login("x@example.se", PASSWORD).await);
    }
    assert_eq!(
        statuses.iter().map(|a| a.status).collect::<Vec<_>>(),
        [401, 401, 401, 429, 429]
    );
    let limited = &statuses[3];
    assert_eq!(limited.code(), "rate_limited");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
}

fn forge(app: &common::TestApp, claims: Value, secret: &[u8]) -> String {
    let _ = app;
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn valid_claims(app: &common::TestApp, sub: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": sub.to_string(), "iss": app.state.config.jwt_issuer, "aud": app.state.config.jwt_audience,
        "iat": now, "exp": now + 600, "typ": "access", "role": "operator", "ver": 0
    })
}

#[actix_rt::test]
async fn forged_expired_and_misdirected_tokens_are_refused() {
    let app = spawn_app().await;
    let id = app.register("target@example.se").await;
    let secret = app
        .state
        .config
        .jwt_secret
        .expose_secret()
        .as_bytes()
        .to_vec();

    // The control: a token signed with the real secret and every claim right works.
    let good = forge(&app, valid_claims(&app, id), &secret);
    assert_eq!(app.get("/me", Some(&good)).await.status, 200);

    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none_token = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&valid_claims(&app, id))
    );
    let mut attacks = vec![
        ("alg none", none_token),
        (
            "wrong signature",
            forge(
                &app,
                valid_claims(&app, id),
                b"another secret that is long enough!!",
            ),
        ),
    ];
    let mut c = valid_claims(&app, id);
    c["exp"] = json!(chrono::Utc::now().timestamp() - 120);
    attacks.push(("expired", forge(&app, c, &secret)));
    let mut c = valid_claims(&app, id);
    c["aud"] = json!("someone-else");
    attacks.push(("wrong aud", forge(&app, c, &secret)));
    let mut c = valid_claims(&app, id);
    c["iss"] = json!("evil");
    attacks.push(("wrong iss", forge(&app, c, &secret)));
    let mut c = valid_claims(&app, id);
    c["typ"] = json!("refresh");
    attacks.push(("not an access token", forge(&app, c, &secret)));
    let mut c = valid_claims(&app, id);
    c.as_object_mut().unwrap().remove("iat");
    attacks.push(("no iat", forge(&app, c, &secret)));
    let hs512 = encode(
        &Header::new(Algorithm::HS512),
        &valid_claims(&app, id),
        &EncodingKey::from_secret(&secret),
    )
    .unwrap();
    attacks.push(("other algorithm", hs512));

    for (name, token) in attacks {
        let a = app.get("/me", Some(&token)).await;
        assert_eq!((a.status, a.code()), (401, "invalid_token"), "{name}");
    }
}

#[actix_rt::test]
async fn a_refresh_token_is_no_access_token_and_an_access_token_no_refresh_token() {
    let app = spawn_app().await;
    let (access, refresh) = app.driver("mix@example.se").await;
    let a = app.get("/me", Some(&refresh)).await;
    assert_eq!((a.status, a.code()), (401, "invalid_token"));
    let r = app
        .post("/auth/refresh", json!({"refresh_token": access}), None)
        .await;
    assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"));
}

#[actix_rt::test]
async fn a_reused_refresh_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    app.register("reuse@example.se").await;
    let login = app.login("reuse@example.se", PASSWORD).await;
    let first = login.body["refresh_token"].as_str().unwrap().to_string();
    let second = app
        .post("/auth/refresh", json!({"refresh_token": first}), None)
        .await;
    assert_eq!(second.status, 200);
    let second = second.body["refresh_token"].as_str().unwrap().to_string();

    // An attacker replays the stolen first token.
    let replay = app
        .post("/auth/refresh", json!({"refresh_token": first}), None)
        .await;
    assert_eq!(
        (replay.status, replay.code()),
        (401, "refresh_token_reused")
    );
    // The legitimate holder's newer token died with the family.
    let legit = app
        .post("/auth/refresh", json!({"refresh_token": second}), None)
        .await;
    assert_eq!(legit.status, 401);

    // Another login (another family) is unaffected.
    let other = app.login("reuse@example.se", PASSWORD).await;
    let ok = app
        .post(
            "/auth/refresh",
            json!({"refresh_token": other.body["refresh_token"]}),
            None,
        )
        .await;
    assert_eq!(ok.status, 200);
    let id = app.get("/me", ok.body["access_token"].as_str()).await.body["id"]
        .as_i64()
        .unwrap();
    assert!(app
        .audit_actions(id)
        .await
        .contains(&"refresh_token_reused".to_string()));
}

#[actix_rt::test]
async fn a_driver_calling_an_operator_route_gets_403_and_an_operator_gets_in() {
    let app = spawn_app().await;
    let (driver, _) = app.driver("driver@example.se").await;
    for path in ["/admin/users", "/admin/audit-events"] {
        let a = app.get(path, Some(&driver)).await;
        assert_eq!((a.status, a.code()), (403, "operator_only"), "{path}");
        let anonymous = app.get(path, None).await;
        assert_eq!(anonymous.status, 401, "{path}");
    }
    let operator = app.operator("ops@example.se").await;
    let users = app.get("/admin/users", Some(&operator)).await;
    assert_eq!(users.status, 200);
    let roles: Vec<&str> = users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["operator", "driver"]);
    let events = app
        .get(
            "/admin/audit-events?action=login_succeeded",
            Some(&operator),
        )
        .await;
    assert_eq!(events.status, 200);
    assert_eq!(events.body["items"].as_array().unwrap().len(), 2);
}

#[actix_rt::test]
async fn an_operator_blocks_a_driver_who_is_then_refused() {
    let app = spawn_app().await;
    let (driver, refresh) = app.driver("blocked@example.se").await;
    let id = app.get("/me", Some(&driver)).await.body["id"]
        .as_i64()
        .unwrap();
    let operator = app.operator("ops@example.se").await;
    let a = app
        .post(
            &format!("/admin/users/{id}/block"),
            json!({}),
            Some(&operator),
        )
        .await;
    assert_eq!(
        (a.status, a.body["status"].as_str()),
        (200, Some("blocked"))
    );
    assert_eq!(
        app.get("/me", Some(&driver)).await.code(),
        "account_blocked"
    );
    assert_eq!(
        app.post("/auth/refresh", json!({"refresh_token": refresh}), None)
            .await
            .status,
        401
    );
    let login = app.login("blocked@example.se", PASSWORD).await;
    assert_eq!((login.status, login.code()), (403, "account_blocked"));
    let missing = app
        .post("/admin/users/999999/block", json!({}), Some(&operator))
        .await;
    assert_eq!(missing.status, 404);
    app.post(
        &format!("/admin/users/{id}/unblock"),
        json!({}),
        Some(&operator),
    )
    .await;
    assert_eq!(app.login("blocked@example.se", PASSWORD).await.status, 200);
}

#[actix_rt::test]
async fn changing_the_password_revokes_every_token() {
    let app = spawn_app().await;
    let (access, refresh) = app.driver("change@example.se").await;
    let weak = app
        .post(
            "/me/password",
            json!({"current_password": PASSWORD, "new_password": "12345678"}),
            Some(&access),
        )
        .await;
    assert_eq!((weak.status, weak.code()), (422, "weak_password"));
    let wrong = app
        .post("/me/password", json!({"current_password": "not my password", "new_password": "a brand new passphrase"}), Some(&access))
        .await;
    assert_eq!((wrong.status, wrong.code()), (403, "wrong_password"));
    let ok = app
        .post(
            "/me/password",
            json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
            Some(&access),
        )
        .await;
    assert_eq!(ok.status, 204);
    assert_eq!(
        app.get("/me", Some(&access)).await.status,
        401,
        "old access token revoked"
    );
    assert_eq!(
        app.post("/auth/refresh", json!({"refresh_token": refresh}), None)
            .await
            .status,
        401
    );
    assert_eq!(app.login("change@example.se", PASSWORD).await.status, 401);
    let new = app
        .login("change@example.se", "a brand new passphrase")
        .await;
    assert_eq!(new.status, 200);
    let activity = app
        .get("/me/activity", new.body["access_token"].as_str())
        .await;
    let actions: Vec<&str> = activity.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"password_changed") && actions.contains(&"password_change_refused"),
        "{actions:?}"
    );
    assert!(activity.body["items"][0]["client_addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1"));
}

#[actix_rt::test]
async fn patching_me_changes_the_name_and_an_email_change_needs_the_password() {
    let app = spawn_app().await;
    let (access, _) = app.driver("patch@example.se").await;
    app.register("other@example.se").await;
    let req = |body: Value| {
        app.client
            .patch(app.api("/me"))
            .bearer_auth(&access)
            .json(&body)
    };
    let a = app.send(req(json!({"name": "New Name"}))).await;
    assert_eq!((a.status, a.body["name"].as_str()), (200, Some("New Name")));
    let a = app.send(req(json!({"email": "new@example.se"}))).await;
    assert_eq!((a.status, a.code()), (422, "current_password_required"));
    let a = app
        .send(req(
            json!({"email": "other@example.se", "current_password": PASSWORD}),
        ))
        .await;
    assert_eq!((a.status, a.code()), (409, "email_taken"));
    let a = app
        .send(req(
            json!({"email": "new@example.se", "current_password": PASSWORD}),
        ))
        .await;
    assert_eq!(
        (a.status, a.body["email"].as_str()),
        (200, Some("new@example.se"))
    );
    let a = app.send(req(json!({"role": "operator"}))).await;
    assert_eq!(a.status, 422, "unknown fields such as role are refused");
}

#[actix_rt::test]
async fn deleting_the_account_erases_personal_data_and_revokes_tokens() {
    let app = spawn_app().await;
    let (access, refresh) = app.driver("gone@example.se").await;
    let del = |password: &str| {
        app.client
            .delete(app.api("/me"))
            .bearer_auth(&access)
            .json(&json!({"password": password}))
    };
    assert_eq!(app.send(del("not the password")).await.status, 403);
    assert_eq!(app.send(del(PASSWORD)).await.status, 204);
    assert_eq!(app.get("/me", Some(&access)).await.status, 401);
    assert_eq!(
        app.post("/auth/refresh", json!({"refresh_token": refresh}), None)
            .await
            .status,
        401
    );
    assert_eq!(app.login("gone@example.se", PASSWORD).await.status, 401);

    let operator = app.operator("ops@example.se").await;
    let users = app.get("/admin/users", Some(&operator)).await;
    let erased = users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["role"] == "driver")
        .unwrap()
        .clone();
    assert_eq!(erased["status"], "deleted");
    assert!(erased["email"].is_null() && erased["name"].is_null());
    // The address can be used again by a new account.
    app.register("gone@example.se").await;
}

#[actix_rt::test]
async fn drivers_see_only_their_own_activity() {
    let app = spawn_app().await;
    let (a, _) = app.driver("a@example.se").await;
    let (_b, _) = app.driver("b@example.se").await;
    app.login("b@example.se", "wrong wrong wrong").await;
    let mine = app.get("/me/activity?limit=1", Some(&a)).await;
    assert_eq!(mine.status, 200);
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);
    let cursor = mine.body["next_cursor"].as_str().unwrap().to_string();
    let rest = app
        .get(&format!("/me/activity?cursor={cursor}"), Some(&a))
        .await;
    let all: Vec<Value> = mine.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest.body["items"].as_array().unwrap())
        .cloned()
        .collect();
    let my_id = app.get("/me", Some(&a)).await.body["id"].clone();
    assert_eq!(all.len(), 2, "registered + logged in");
    assert!(all.iter().all(|e| e["user_id"] == my_id));
    assert!(rest.body["next_cursor"].is_null());
}

#[actix_rt::test]
async fn cookie_mode_sets_httponly_cookies_and_demands_csrf_on_changes() {
    let app = spawn_app().await;
    app.register("portal@example.se").await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    let res = browser
        .post(app.api("/auth/login?mode=cookie"))
        .json(&json!({"email": "portal@example.se", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let set_cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let access_cookie = set_cookies
        .iter()
        .find(|c| c.starts_with("laddkoll_access="))
        .unwrap();
    assert!(access_cookie.contains("HttpOnly") && access_cookie.contains("SameSite=Strict"));
    let csrf_cookie = set_cookies
        .iter()
        .find(|c| c.starts_with("laddkoll_csrf="))
        .unwrap();
    assert!(
        !csrf_cookie.contains("HttpOnly"),
        "the portal reads the CSRF cookie"
    );
    let body: Value = res.json().await.unwrap();
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    let csrf = body["csrf_token"].as_str().unwrap().to_string();

    let me = browser.get(app.api("/me")).send().await.unwrap();
    assert_eq!(me.status(), 200, "GET works with the cookie alone");
    let no_csrf = browser
        .patch(app.api("/me"))
        .json(&json!({"name": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
    let wrong = browser
        .patch(app.api("/me"))
        .header("x-csrf-token", "forged")
        .json(&json!({"name": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let ok = browser
        .patch(app.api("/me"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let refresh_without = browser.post(app.api("/auth/refresh")).send().await.unwrap();
    assert_eq!(refresh_without.status(), 403);
    let refreshed = browser
        .post(app.api("/auth/refresh"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let still = browser
        .patch(app.api("/me"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "Y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200, "the CSRF token survives a refresh");

    let out = browser
        .post(app.api("/auth/logout"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert_eq!(
        browser.get(app.api("/me")).send().await.unwrap().status(),
        401,
        "cookies cleared"
    );
}

#[actix_rt::test]
async fn malformed_oversized_and_misrouted_requests_get_the_json_error_shape() {
    let app = spawn_app_with(|c| c.max_body_bytes = 1024).await;
    let raw = |path: &str, body: &str| {
        app.client
            .post(app.api(path))
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let cases = [
        (
            app.send(raw("/auth/login", "{\"email\":")).await,
            400,
            "malformed_json",
        ),
        (
            app.send(raw("/auth/login", "{\"email\": 5, \"password\": true}"))
                .await,
            422,
            "invalid_body",
        ),
        (
            app.send(raw("/auth/login", "{}")).await,
            422,
            "invalid_body",
        ),
        (
            app.send(raw(
                "/auth/login",
                &format!("{{\"email\":\"{}\"}}", "a".repeat(5000)),
            ))
            .await,
            413,
            "payload_too_large",
        ),
        (
            app.send(raw("/auth/logout", &"x".repeat(300_000))).await,
            413,
            "payload_too_large",
        ),
        (
            app.send(raw("/auth/refresh", "{not json")).await,
            400,
            "malformed_json",
        ),
        (
            app.send(
                app.client
                    .post(app.api("/auth/login"))
                    .header("content-type", "text/plain")
                    .body("hi"),
            )
            .await,
            415,
            "unsupported_media_type",
        ),
        (
            app.send(app.client.get(app.api("/no/such/route"))).await,
            404,
            "not_found",
        ),
        (
            app.send(app.client.get(format!("{}/nothing-here", app.base)))
                .await,
            404,
            "not_found",
        ),
        (
            app.send(
                app.client
                    .post(app.api("/auth/login?mode=carrier-pigeon"))
                    .json(&json!({"email": "a@b.se", "password": PASSWORD})),
            )
            .await,
            400,
            "invalid_query",
        ),
    ];
    for (i, (answer, status, code)) in cases.iter().enumerate() {
        assert_eq!(
            (answer.status, answer.code()),
            (*status, *code),
            "case {i}: {}",
            answer.body
        );
        assert!(answer.body["error"]["message"].is_string(), "case {i}");
    }
    let (token, _) = app.driver("p@example.se").await;
    let operator = app.operator("o@example.se").await;
    let bad_path = app
        .send(
            app.client
                .post(app.api("/admin/users/abc/block"))
                .bearer_auth(&operator),
        )
        .await;
    assert_eq!((bad_path.status, bad_path.code()), (400, "invalid_path"));
    let bad_query = app.get("/me/activity?limit=abc", Some(&token)).await;
    assert_eq!((bad_query.status, bad_query.code()), (400, "invalid_query"));
    let bad_cursor = app.get("/me/activity?cursor=-4", Some(&token)).await;
    assert_eq!(
        (bad_cursor.status, bad_cursor.code()),
        (400, "invalid_cursor")
    );
}

#[actix_rt::test]
async fn parallel_guesses_still_lock_the_account() {
    let app = spawn_app().await;
    app.register("parallel@example.se").await;
    let guesses = (0..8).map(|_| app.login("parallel@example.se", "guess guess guess"));
    let answers = futures_util::future::join_all(guesses).await;
    assert!(answers.iter().all(|a| a.status == 401));
    let right = app.login("parallel@example.se", PASSWORD).await;
    assert_eq!(
        (right.status, right.code()),
        (401, "invalid_credentials"),
        "every parallel failure counted, so the account is locked"
    );
}

#[actix_rt::test]
async fn current_password_checks_share_the_per_address_rate_limit() {
    let app = spawn_app_with(|c| c.auth_rate_per_minute = 4).await;
    let (access, _) = app.driver("guess@example.se").await; // register + login: 2 of 4
    let attempt = || {
        app.post(
            "/me/password",
            json!({"current_password": "wrong wrong wrong", "new_password": "a brand new passphrase"}),
            Some(&access),
        )
    };
    assert_eq!(attempt().await.status, 403);
    assert_eq!(attempt().await.status, 403);
    let limited = attempt().await;
    assert_eq!((limited.status, limited.code()), (429, "rate_limited"));
}
