//! The OCPP endpoint `/ocpp/{charge_point_id}`, as transport: HTTP Basic checked before the
//! upgrade, the subprotocol, frames, the read loop and the calls outstanding to the charger.
//! Malformed frames are answered with the CALLERROR the spec names while the connection
//! stays up. What a message means is [`v16`]'s mapping onto the charger-event API
//! ([`crate::central`]); a 2.0.1 mapping would sit beside it.

pub mod admission;
pub mod commands;
pub mod frames;
pub mod registry;
pub mod v16;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::StreamExt;

use crate::http::auth::constant_time_eq;
use crate::http::time::now;
use crate::http::{client_addr, ApiError};
use crate::locations::queries as places;
use crate::state::{AppState, State};
use frames::{CallError, ErrorCode, Frame};
use registry::Link;

/// The only subprotocol spoken.
pub const SUBPROTOCOL: &str = "ocpp1.6";

fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

fn offers_ocpp16(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL))
}

use admission::refuse;

/// `GET /ocpp/{charge_point_id}`: authenticates the charger and upgrades to WebSocket.
pub async fn connect(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let cp = path.into_inner();
    if let Some(refused) = admission::check_id(&state, &req, &cp).await? {
        return Ok(refused);
    }
    let Some((user, key)) = basic_credentials(&req) else {
        return refuse(&state, &req, &cp, "no HTTP Basic credentials").await;
    };
    if user != cp {
        return refuse(
            &state,
            &req,
            &cp,
            "Basic username differs from the charge point id",
        )
        .await;
    }
    let lookup = cp.clone();
    let known = state
        .db
        .run(move |conn| Ok(places::find_charge_point(conn, &lookup)?))
        .await?;
    let Some(charger) = known else {
        return refuse(&state, &req, &cp, "unknown charge point").await;
    };
    if !constant_time_eq(&crate::auth::tokens::token_hash(&key), &charger.key_hash) {
        return refuse(&state, &req, &cp, "wrong key").await;
    }
    if !offers_ocpp16(&req) {
        return Err(ApiError::bad_request(
            "subprotocol_required",
            "the WebSocket must offer the ocpp1.6 subprotocol",
        ));
    }
    let (mut response, session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        ApiError::bad_request(
            "websocket_required",
            format!("not a WebSocket upgrade: {e}"),
        )
    })?;
    response.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        header::HeaderValue::from_static(SUBPROTOCOL),
    );
    let (link, replaced) = state.registry.register(&cp, session);
    if let Some(old) = replaced {
        old.close().await;
    }
    let client = client_addr(&req, state.config.trust_proxy);
    let id = cp.clone();
    let instance = state.config.instance_id.clone();
    let epoch = state
        .charger_writes
        .submit(&cp, move |conn| {
            Ok(crate::central::connected(
                conn,
                &id,
                &instance,
                client.clone(),
                now(),
            )?)
        })
        .await?;
    let max = state.config.ocpp_max_frame_bytes;
    actix_web::rt::spawn(run(
        state.into_inner(),
        cp,
        epoch,
        link,
        stream
            .max_frame_size(max)
            .aggregate_continuations()
            .max_continuation_size(max),
    ));
    Ok(response)
}

async fn run(
    state: Arc<AppState>,
    cp: String,
    epoch: i64,
    link: Arc<Link>,
    mut stream: actix_ws::AggregatedMessageStream,
) {
    while let Some(message) = stream.next().await {
        match message {
            Ok(actix_ws::AggregatedMessage::Text(text)) => {
                if let Some(reply) = on_text(&state, &cp, &link, &text).await {
                    if !link.send(reply).await {
                        break;
                    }
                }
            }
            Ok(actix_ws::AggregatedMessage::Binary(_)) => {
                let err = CallError::new(ErrorCode::FormationViolation, "OCPP-J frames are text");
                if !link.send(frames::error(None, &err)).await {
                    break;
                }
            }
            Ok(actix_ws::AggregatedMessage::Ping(bytes)) => {
                let mut session = link.session();
                if session.pong(&bytes).await.is_err() {
                    break;
                }
            }
            Ok(actix_ws::AggregatedMessage::Pong(_)) => {}
            Ok(actix_ws::AggregatedMessage::Close(reason)) => {
                // Echo the charger's close code, then stop.
                let _ = link.session().close(reason).await;
                break;
            }
            Err(e) if matches!(e, actix_ws::ProtocolError::Io(_)) && !is_oversized(&e) => {
                // The charger's connection went away (power cut, network): nothing to answer.
                tracing::info!(charge_point = %cp, error = %e, "charger connection lost");
                break;
            }
            Err(e) => {
                // An oversized or broken frame: tell the charger, then close the connection,
                // because the stream cannot resynchronise after a protocol error. The close
                // code says which (RFC 6455 §7.4.1): 1009 for too big, 1002 otherwise.
                tracing::warn!(charge_point = %cp, error = %e, "WebSocket protocol error");
                let err =
                    CallError::new(ErrorCode::FormationViolation, format!("frame refused: {e}"));
                link.send(frames::error(None, &err)).await;
                let code = if is_oversized(&e) {
                    actix_ws::CloseCode::Size
                } else {
                    actix_ws::CloseCode::Protocol
                };
                let reason = actix_ws::CloseReason {
                    code,
                    description: Some("frame refused".into()),
                };
                let _ = link.session().close(Some(reason)).await;
                break;
            }
        }
    }
    // Close first: a command waiting for this charger's answer fails now as offline.
    link.close().await;
    if state.registry.unregister(&cp, link.conn_id) {
        let id = cp.clone();
        let instance = state.config.instance_id.clone();
        let _ = state
            .charger_writes
            .submit(&cp, move |conn| {
                Ok(crate::central::disconnected(
                    conn,
                    &id,
                    &instance,
                    epoch,
                    now(),
                )?)
            })
            .await;
    }
}

/// Whether a WebSocket error is a frame (or a message of continuation frames) over the limit.
fn is_oversized(e: &actix_ws::ProtocolError) -> bool {
    match e {
        actix_ws::ProtocolError::Overflow => true,
        actix_ws::ProtocolError::Io(io) => io.to_string().contains("maximum continuation size"),
        _ => false,
    }
}

/// Handles one text frame and returns the reply to send, if any.
async fn on_text(state: &Arc<AppState>, cp: &str, link: &Link, text: &str) -> Option<String> {
    match frames::parse(text) {
        Err(bad) => Some(frames::error(bad.id.as_deref(), &bad.error)),
        Ok(Frame::Result { id, payload }) => {
            link.resolve(&id, Ok(payload));
            None
        }
        Ok(Frame::Error {
            id,
            code,
            description,
        }) => {
            link.resolve(
                &id,
                Err(registry::CallFailure::Refused { code, description }),
            );
            None
        }
        Ok(Frame::Call {
            id,
            action,
            payload,
        }) => Some(match v16::handle_call(state, cp, &action, payload).await {
            Ok(reply) => frames::result(&id, &reply),
            Err(err) => frames::error(Some(&id), &err),
        }),
    }
}
