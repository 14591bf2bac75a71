//! OCPP fuzzing (DESIGN §5): one charger sends many malformed, mistyped, incomplete,
//! out-of-range and huge frames, generated from proptest strategies with a fixed seed. Each frame
//! gets the CALLERROR the spec names — or, for odd data the server stores, a CALLRESULT; for an
//! answer to no call, nothing — and the same connection answers a Heartbeat right after. A second
//! charger, connected the whole time, is served between every two frames. A frame over the size
//! limit cannot be read: it gets a CALLERROR, the connection is closed with 1009 (too big), and
//! the other charger is unaffected.

mod common;

use common::charger::Charger;
use common::spawn_app;
use proptest::prelude::*;
use proptest::strategy::{Union, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};

const T: &str = "2026-11-24T10:00:00Z";

/// What the server must answer to a frame.
#[derive(Debug, Clone)]
enum Expect {
    /// A CALLERROR for this message id (`-1` when the id cannot be read) with this code.
    Error(String, &'static str),
    /// A CALLRESULT for this message id: odd data is stored and answered, never refused.
    Result(String),
    /// Nothing: a CALLRESULT or CALLERROR that answers no call of the server's.
    Silence,
}

#[derive(Debug, Clone)]
enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Case {
    what: String,
    frame: Frame,
    expect: Expect,
}

/// The JSON type of a payload field.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Int,
    Enum,
    Time,
    Array,
}

/// A Core action with a valid payload that sets every field, and its fields (JSON pointers).
struct Action {
    name: &'static str,
    payload: Value,
    fields: Vec<(&'static str, Kind, bool)>,
}

fn meter_value() -> Value {
    json!([{"timestamp": T, "sampledValue": [{"value": "1000", "context": "Sample.Periodic",
        "format": "Raw", "measurand": "Energy.Active.Import.Register", "phase": "L1",
        "location": "Outlet", "unit": "Wh"}]}])
}

fn core_actions() -> Vec<Action> {
    use Kind::*;
    vec![
        Action {
            name: "BootNotification",
            payload: json!({"chargePointVendor": "Fuzz", "chargePointModel": "F-1",
                "chargePointSerialNumber": "S-1", "chargeBoxSerialNumber": "B-1", "firmwareVersion": "1.0",
                "iccid": "8946", "imsi": "24001", "meterType": "M", "meterSerialNumber": "MS-1"}),
            fields: vec![
                ("/chargePointVendor", Str, true),
                ("/chargePointModel", Str, true),
                ("/chargePointSerialNumber", Str, false),
                ("/chargeBoxSerialNumber", Str, false),
                ("/firmwareVersion", Str, false),
                ("/iccid", Str, false),
                ("/imsi", Str, false),
                ("/meterType", Str, false),
                ("/meterSerialNumber", Str, false),
            ],
        },
        Action {
            name: "StartTransaction",
            payload: json!({"connectorId": 1, "idTag": "FUZZ0001", "meterStart": 0, "timestamp": T,
                "reservationId": 7}),
            fields: vec![
                ("/connectorId", Int, true),
                ("/idTag", Str, true),
                ("/meterStart", Int, true),
                ("/timestamp", Time, true),
                ("/reservationId", Int, false),
            ],
        },
        Action {
            name: "MeterValues",
            payload: json!({"connectorId": 1, "transactionId": 999_999, "meterValue": meter_value()}),
            fields: vec![
                ("/connectorId", Int, true),
                ("/transactionId", Int, false),
                ("/meterValue", Array, true),
                ("/meterValue/0/timestamp", Time, true),
                ("/meterValue/0/sampledValue", Array, true),
                ("/meterValue/0/sampledValue/0/value", Str, true),
                ("/meterValue/0/sampledValue/0/context", Enum, false),
                ("/meterValue/0/sampledValue/0/format", Enum, false),
                ("/meterValue/0/sampledValue/0/measurand", Enum, false),
                ("/meterValue/0/sampledValue/0/phase", Enum, false),
                ("/meterValue/0/sampledValue/0/location", Enum, false),
                ("/meterValue/0/sampledValue/0/unit", Enum, false),
            ],
        },
        Action {
            name: "StopTransaction",
            payload: json!({"transactionId": 999_999, "meterStop": 100, "timestamp": T, "idTag": "FUZZ0001",
                "reason": "Local", "transactionData": meter_value()}),
            fields: vec![
                ("/transactionId", Int, true),
                ("/meterStop", Int, true),
                ("/timestamp", Time, true),
                ("/idTag", Str, false),
                ("/reason", Enum, false),
                ("/transactionData", Array, false),
                ("/transactionData/0/timestamp", Time, true),
                ("/transactionData/0/sampledValue/0/value", Str, true),
            ],
        },
        Action {
            name: "StatusNotification",
            payload: json!({"connectorId": 1, "errorCode": "NoError", "status": "Available",
                "timestamp": T, "info": "fuzz", "vendorId": "se.laddkoll", "vendorErrorCode": "E0"}),
            fields: vec![
                ("/connectorId", Int, true),
                ("/errorCode", Enum, true),
                ("/status", Enum, true),
                ("/timestamp", Time, false),
                ("/info", Str, false),
                ("/vendorId", Str, false),
                ("/vendorErrorCode", Str, false),
            ],
        },
        Action {
            name: "Authorize",
            payload: json!({"idTag": "FUZZ0001"}),
            fields: vec![("/idTag", Str, true)],
        },
        Action {
            name: "DataTransfer",
            payload: json!({"vendorId": "se.laddkoll", "messageId": "m-1", "data": "{\"a\":1}"}),
            fields: vec![
                ("/vendorId", Str, true),
                ("/messageId", Str, false),
                ("/data", Str, false),
            ],
        },
        Action {
            name: "FirmwareStatusNotification",
            payload: json!({"status": "Installed"}),
            fields: vec![("/status", Enum, true)],
        },
        Action {
            name: "DiagnosticsStatusNotification",
            payload: json!({"status": "Uploaded"}),
            fields: vec![("/status", Enum, true)],
        },
    ]
}

/// Actions the central system sends; a charger sending them gets NotSupported.
const SERVER_ACTIONS: [&str; 9] = [
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "Reset",
    "UnlockConnector",
    "ChangeAvailability",
    "TriggerMessage",
    "ChangeConfiguration",
    "GetConfiguration",
    "ClearCache",
];

/// Values of any JSON type but `kind` (no `null`, which optional fields accept; no object for
/// enums, which serde reads as an externally tagged variant).
fn wrong_type(kind: Kind) -> impl Strategy<Value = Value> {
    let int = any::<i32>().prop_map(|n| json!(n)).boxed();
    let frac = (-1000i32..1000)
        .prop_map(|n| json!(f64::from(n) + 0.5))
        .boxed();
    let boolean = any::<bool>().prop_map(Value::Bool).boxed();
    let text = "[a-zA-Z0-9 ]{0,12}".prop_map(Value::String).boxed();
    let list = prop::collection::vec(any::<i8>().prop_map(|n| json!(n)), 0..3)
        .prop_map(Value::Array)
        .boxed();
    let object = "[a-z]{1,8}"
        .prop_map(|k| Value::Object([(k, json!(1))].into_iter().collect()))
        .boxed();
    Union::new(match kind {
        Kind::Str => vec![int, frac, boolean, list, object],
        Kind::Int => vec![text, frac, boolean, list, object],
        Kind::Enum => vec![int, frac, boolean, list],
        Kind::Time => vec![int, frac, boolean, list, object],
        Kind::Array => vec![int, text, boolean, object],
    })
}

/// Strings chrono cannot read as an RFC 3339 date and time.
fn bad_timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "yesterday",
            "",
            "2026-13-01T10:00:00Z",
            "2026-02-30T10:00:00Z",
            "2026-11-24T25:00:00Z",
            "2026-11-24T10:61:00Z",
            "2026-11-24",
            "2026-11-24T10:00:00",
            "2026-11-24T10:00:00Z and more",
            "24/11/2026 10:00",
            "1732442400",
            "2026-11-24T10:00:00+25:00",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z0-9:. -]{1,24}",
    ]
    .prop_filter("not a date", |s| {
        serde_json::from_value::<chrono::DateTime<chrono::Utc>>(json!(s)).is_err()
    })
}

/// Generates the cases from a fixed seed.
struct Gen {
    runner: TestRunner,
    next: u64,
    cases: Vec<Case>,
}

impl Gen {
    fn sample<S: Strategy>(&mut self, s: S) -> S::Value {
        s.new_tree(&mut self.runner).expect("strategy").current()
    }

    fn id(&mut self) -> String {
        self.next += 1;
        format!("f{}", self.next)
    }

    fn push(&mut self, what: impl Into<String>, frame: Value, expect: Expect) {
        self.push_text(what, frame.to_string(), expect);
    }

    fn push_text(&mut self, what: impl Into<String>, text: String, expect: Expect) {
        self.cases.push(Case {
            what: what.into(),
            frame: Frame::Text(text),
            expect,
        });
    }

    /// A CALL expecting a CALLERROR with `code`, or a CALLRESULT when `code` is None.
    fn call(&mut self, what: String, action: &str, payload: Value, code: Option<&'static str>) {
        let id = self.id();
        let expect = match code {
            Some(code) => Expect::Error(id.clone(), code),
            None => Expect::Result(id.clone()),
        };
        self.push(what, json!([2, id, action, payload]), expect);
    }
}

fn set(payload: &Value, pointer: &str, v: Value) -> Value {
    let mut p = payload.clone();
    *p.pointer_mut(pointer).expect("field") = v;
    p
}

fn without(payload: &Value, pointer: &str) -> Value {
    let mut p = payload.clone();
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    p.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent object")
        .remove(key);
    p
}

fn cases(max_frame: usize) -> Vec<Case> {
    let mut g = Gen {
        runner: TestRunner::deterministic(),
        next: 0,
        cases: Vec::new(),
    };
    const FV: &str = "FormationViolation";
    let no_id = || Expect::Error("-1".into(), FV);

    // Not JSON: prefixes of a valid frame, trailing garbage, arbitrary text.
    let valid = r#"[2,"p1","Heartbeat",{}]"#;
    for n in 0..valid.len() {
        g.push_text(format!("prefix of {n} bytes"), valid[..n].into(), no_id());
    }
    g.push_text("trailing garbage", format!("{valid} x"), no_id());
    g.push_text("two frames in one", format!("{valid}{valid}"), no_id());
    for _ in 0..20 {
        let text = g.sample(
            "\\PC{1,40}".prop_filter("not JSON", |s| serde_json::from_str::<Value>(s).is_err()),
        );
        g.push_text(format!("not JSON: {text:?}"), text, no_id());
    }
    g.cases.push(Case {
        what: "a binary frame".into(),
        frame: Frame::Binary(valid.as_bytes().to_vec()),
        expect: no_id(),
    });

    // JSON that is not an array.
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "\\PC{0,20}".prop_map(Value::String),
    ];
    let non_array = prop_oneof![
        leaf.clone(),
        prop::collection::btree_map("[a-z]{1,6}", leaf.clone(), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    ];
    for _ in 0..15 {
        let v = g.sample(&non_array);
        g.push(format!("not an array: {v}"), v, no_id());
    }

    // Wrong message type ids.
    let bad_type = prop_oneof![
        (-1000i64..1000)
            .prop_filter("not 2..=4", |n| !(2..=4).contains(n))
            .prop_map(|n| json!(n)),
        Just(json!(2.5)),
        Just(json!("2")),
        Just(json!(null)),
        Just(json!(true)),
        Just(json!([2])),
    ];
    for _ in 0..15 {
        let t = g.sample(&bad_type);
        let id = g.id();
        g.push(
            format!("message type {t}"),
            json!([t, id, "Heartbeat", {}]),
            Expect::Error(id, "ProtocolError"),
        );
    }

    // Wrong number of elements for the message type.
    g.push("an empty array", json!([]), no_id());
    g.push("only a type", json!([2]), no_id());
    for (t, extra) in [
        (2, 0),
        (2, 1),
        (2, 3),
        (2, 4),
        (3, 0),
        (3, 2),
        (3, 3),
        (4, 0),
        (4, 1),
    ] {
        let id = g.id();
        let mut frame = vec![json!(t), json!(id)];
        let filler = [
            json!("Heartbeat"),
            json!({}),
            json!("x"),
            json!({}),
            json!(1),
        ];
        frame.extend(filler.into_iter().take(extra));
        g.push(
            format!("type {t} with {} elements", frame.len()),
            Value::Array(frame),
            Expect::Error(id, FV),
        );
    }

    // Message ids that are not strings of 1 to 36 characters.
    let bad_id = prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        Just(json!(["a"])),
        Just(json!({"id": "a"})),
        Just(json!("")),
        (37usize..4000).prop_map(|n| json!("i".repeat(n))),
    ];
    for _ in 0..15 {
        let id = g.sample(&bad_id);
        let shown: String = id.to_string().chars().take(40).collect();
        g.push(
            format!("message id {shown}"),
            json!([2, id, "Heartbeat", {}]),
            no_id(),
        );
    }
    let longest = "L".repeat(36);
    g.push(
        "a 36-character message id",
        json!([2, longest, "Heartbeat", {}]),
        Expect::Result(longest.clone()),
    );

    // Actions: not a string, unknown, sent the wrong way; payloads that are not objects.
    for action in [json!(7), json!(null), json!(["Heartbeat"]), json!({})] {
        let id = g.id();
        g.push(
            format!("action {action}"),
            json!([2, id, action, {}]),
            Expect::Error(id, FV),
        );
    }
    let known: Vec<&str> = core_actions()
        .iter()
        .map(|a| a.name)
        .chain(["Heartbeat"])
        .chain(SERVER_ACTIONS)
        .collect();
    for _ in 0..15 {
        let action =
            g.sample("[A-Za-z]{0,30}".prop_filter("unknown", |a| !known.contains(&a.as_str())));
        g.call(
            format!("unknown action {action:?}"),
            &action,
            json!({}),
            Some("NotImplemented"),
        );
    }
    for action in SERVER_ACTIONS {
        g.call(
            format!("{action} from a charger"),
            action,
            json!({}),
            Some("NotSupported"),
        );
    }
    for _ in 0..8 {
        let payload = g.sample(&leaf);
        let id = g.id();
        g.push(
            format!("Heartbeat payload {payload}"),
            json!([2, id, "Heartbeat", payload]),
            Expect::Error(id, FV),
        );
    }
    g.call(
        "Heartbeat with an unknown field".into(),
        "Heartbeat",
        json!({"x": 1}),
        None,
    );

    // Per Core action: the valid payload, each field of a wrong type, each required field
    // missing, each optional field left out.
    for action in core_actions() {
        g.call(
            format!("{} valid", action.name),
            action.name,
            action.payload.clone(),
            None,
        );
        for &(field, kind, required) in &action.fields {
            for _ in 0..3 {
                let v = g.sample(wrong_type(kind));
                g.call(
                    format!("{} {field} = {v}", action.name),
                    action.name,
                    set(&action.payload, field, v),
                    Some("TypeConstraintViolation"),
                );
            }
            if required {
                g.call(
                    format!("{} {field} = null", action.name),
                    action.name,
                    set(&action.payload, field, Value::Null),
                    Some("TypeConstraintViolation"),
                );
                g.call(
                    format!("{} without {field}", action.name),
                    action.name,
                    without(&action.payload, field),
                    Some("OccurenceConstraintViolation"),
                );
            } else {
                g.call(
                    format!("{} without optional {field}", action.name),
                    action.name,
                    without(&action.payload, field),
                    None,
                );
            }
            if kind == Kind::Enum {
                // The prefix keeps it off every OCPP enum value.
                let v = g.sample("X-[a-zA-Z.]{0,14}");
                g.call(
                    format!("{} {field} = {v:?}", action.name),
                    action.name,
                    set(&action.payload, field, json!(v)),
                    Some("PropertyConstraintViolation"),
                );
            }
            if kind == Kind::Time {
                for _ in 0..3 {
                    let v = g.sample(bad_timestamp());
                    g.call(
                        format!("{} {field} = {v:?}", action.name),
                        action.name,
                        set(&action.payload, field, json!(v)),
                        Some("PropertyConstraintViolation"),
                    );
                }
            }
        }
    }

    // Numbers out of the range of their type (connectorId u32, the others i32).
    let actions = core_actions();
    let payload_of = |name: &str| {
        actions
            .iter()
            .find(|a| a.name == name)
            .unwrap()
            .payload
            .clone()
    };
    let out_of_u32 = prop_oneof![
        (i64::MIN..0).prop_map(|n| json!(n)),
        (1i64 << 32..i64::MAX).prop_map(|n| json!(n))
    ];
    let out_of_i32 = prop_oneof![
        (i64::MIN..i64::from(i32::MIN)).prop_map(|n| json!(n)),
        (i64::from(i32::MAX) + 1..i64::MAX).prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
    ];
    for (action, field, strategy) in [
        (
            "StartTransaction",
            "/connectorId",
            out_of_u32.clone().boxed(),
        ),
        (
            "StatusNotification",
            "/connectorId",
            out_of_u32.clone().boxed(),
        ),
        ("MeterValues", "/connectorId", out_of_u32.boxed()),
        (
            "StartTransaction",
            "/meterStart",
            out_of_i32.clone().boxed(),
        ),
        (
            "StartTransaction",
            "/reservationId",
            out_of_i32.clone().boxed(),
        ),
        ("StopTransaction", "/meterStop", out_of_i32.clone().boxed()),
        (
            "StopTransaction",
            "/transactionId",
            out_of_i32.clone().boxed(),
        ),
        ("MeterValues", "/transactionId", out_of_i32.boxed()),
    ] {
        for _ in 0..3 {
            let v = g.sample(&strategy);
            g.call(
                format!("{action} {field} = {v}"),
                action,
                set(&payload_of(action), field, v),
                Some("PropertyConstraintViolation"),
            );
        }
    }

    // Strings over (or under) the lengths OCPP 1.6 declares.
    for (action, field, max) in [
        ("Authorize", "/idTag", 20usize),
        ("StartTransaction", "/idTag", 20),
        ("StopTransaction", "/idTag", 20),
        ("BootNotification", "/chargePointVendor", 20),
        ("BootNotification", "/chargePointModel", 20),
        ("BootNotification", "/firmwareVersion", 50),
        ("StatusNotification", "/info", 50),
        ("StatusNotification", "/vendorErrorCode", 50),
        ("DataTransfer", "/vendorId", 255),
        ("DataTransfer", "/messageId", 50),
    ] {
        let n = g.sample(max + 1..max * 4);
        for v in ["x".repeat(n), String::new()] {
            g.call(
                format!("{action} {field} of {} characters", v.len()),
                action,
                set(&payload_of(action), field, json!(v)),
                Some("PropertyConstraintViolation"),
            );
        }
    }

    // Odd data within the types: stored (and flagged) and answered, never refused (§5).
    let odd = [
        ("StatusNotification", "/connectorId", json!(0)),
        ("StatusNotification", "/connectorId", json!(u32::MAX)),
        (
            "StatusNotification",
            "/timestamp",
            json!("1970-01-01T00:00:00Z"),
        ),
        (
            "StatusNotification",
            "/timestamp",
            json!("9999-12-31T23:59:59Z"),
        ),
        ("MeterValues", "/connectorId", json!(u32::MAX)),
        ("MeterValues", "/transactionId", json!(-1)),
        ("MeterValues", "/transactionId", json!(i32::MIN)),
        (
            "MeterValues",
            "/meterValue/0/timestamp",
            json!("0001-01-01T00:00:00Z"),
        ),
        (
            "MeterValues",
            "/meterValue/0/timestamp",
            json!("2026-11-24T23:30:00+14:00"),
        ),
        (
            "MeterValues",
            "/meterValue/0/sampledValue/0/value",
            json!("not a number"),
        ),
        (
            "MeterValues",
            "/meterValue/0/sampledValue/0/value",
            json!("-1e308"),
        ),
        ("MeterValues", "/meterValue", json!([])),
        ("StopTransaction", "/transactionId", json!(-1)),
        ("StopTransaction", "/transactionId", json!(i32::MAX)),
        ("StopTransaction", "/meterStop", json!(i32::MIN)),
        (
            "StopTransaction",
            "/timestamp",
            json!("1970-01-01T00:00:00Z"),
        ),
        ("DataTransfer", "/data", json!("d".repeat(10_000))),
    ];
    for (action, field, v) in odd {
        let shown: String = v.to_string().chars().take(30).collect();
        g.call(
            format!("{action} {field} = {shown}"),
            action,
            set(&payload_of(action), field, v),
            None,
        );
    }

    // CALLRESULTs and CALLERRORs that answer no call: ignored.
    for frame in [
        json!([3, "no-such-call", {}]),
        json!([3, "no-such-call", [1, 2]]),
        json!([3, "no-such-call", null]),
        json!([4, "no-such-call", "GenericError", "", {}]),
        json!([4, "no-such-call", 5, null, {}]),
        json!([4, "no-such-call", "InternalError", "x", {}, "extra"]),
    ] {
        g.push(format!("answer to no call {frame}"), frame, Expect::Silence);
    }

    // Frames of the largest accepted size.
    let fill = |g: &mut Gen, what: &str, action: &str, payload: Value, pointer: &str, code| {
        let id = g.id();
        let frame = |len: usize| {
            json!([
                2,
                id,
                action,
                set(&payload, pointer, json!("z".repeat(len)))
            ])
            .to_string()
        };
        let text = frame(max_frame - frame(0).len());
        assert_eq!(text.len(), max_frame);
        let expect = match code {
            Some(code) => Expect::Error(id.clone(), code),
            None => Expect::Result(id.clone()),
        };
        g.push_text(format!("{what} ({max_frame} bytes)"), text, expect);
    };
    fill(
        &mut g,
        "DataTransfer with huge data",
        "DataTransfer",
        payload_of("DataTransfer"),
        "/data",
        None,
    );
    fill(
        &mut g,
        "BootNotification with a huge unknown field",
        "BootNotification",
        {
            let mut p = payload_of("BootNotification");
            p["extra"] = json!("");
            p
        },
        "/extra",
        None,
    );
    fill(
        &mut g,
        "Authorize with a huge idTag",
        "Authorize",
        payload_of("Authorize"),
        "/idTag",
        Some("PropertyConstraintViolation"),
    );
    fill(
        &mut g,
        "unknown action with a huge payload",
        "Zzz",
        json!({"z": ""}),
        "/z",
        Some("NotImplemented"),
    );
    // Thousands of sampled values (more rows than one insert may bind).
    let sample = json!({"value": "1", "measurand": "Energy.Active.Import.Register", "unit": "Wh"});
    let per = sample.to_string().len() + 1;
    let n = (max_frame - 400) / per;
    let mut many = payload_of("MeterValues");
    many["meterValue"][0]["sampledValue"] = Value::Array(vec![sample; n]);
    many["meterValue"][0]["sampledValue"][0]["value"] = json!("");
    fill(
        &mut g,
        &format!("MeterValues with {n} sampled values"),
        "MeterValues",
        many,
        "/meterValue/0/sampledValue/0/value",
        None,
    );

    g.cases
}

/// Reads the answer to a case from the fuzzed charger; describes what is wrong with it.
async fn check_answer(a: &mut Charger, case: &Case) -> Result<(), String> {
    let (id, code) = match &case.expect {
        Expect::Silence => return Ok(()),
        Expect::Error(id, code) => (id.as_str(), Some(*code)),
        Expect::Result(id) => (id.as_str(), None),
    };
    let frame = a
        .next_frame()
        .await
        .unwrap_or_else(|| panic!("{}: the server closed the connection", case.what));
    let shown: String = frame.to_string().chars().take(200).collect();
    let ok = match code {
        Some(code) => {
            frame[0] == 4
                && frame[1] == id
                && frame[2] == code
                && frame[3].is_string()
                && frame[4].is_object()
                && frame.as_array().is_some_and(|f| f.len() == 5)
        }
        None => frame[0] == 3 && frame[1] == id && frame[2].is_object(),
    };
    match ok {
        true => Ok(()),
        false => Err(format!(
            "{}: expected {}, got {shown}",
            case.what,
            code.map_or("a CALLRESULT".to_string(), |c| format!("CALLERROR {c}"))
        )),
    }
}

/// Sends a Heartbeat and checks that the next frame is its answer (nothing else came first).
async fn heartbeat(c: &mut Charger, id: &str, after: &str) {
    c.send_raw(&json!([2, id, "Heartbeat", {}]).to_string())
        .await;
    let frame = c
        .next_frame()
        .await
        .unwrap_or_else(|| panic!("{}: closed after {after}", c.id));
    assert!(
        frame[0] == 3 && frame[1] == id && frame[2]["currentTime"].is_string(),
        "{}: the Heartbeat after {after} was not answered next: {frame}",
        c.id
    );
}

async fn meter_values(c: &mut Charger, after: &str) {
    let reply = c
        .call(
            "MeterValues",
            json!({"connectorId": 1, "meterValue": meter_value()}),
        )
        .await;
    assert!(
        matches!(reply, common::charger::Reply::Result(_)),
        "{}: MeterValues after {after}: {reply:?}",
        c.id
    );
}

#[actix_rt::test]
async fn malformed_mistyped_and_huge_frames_get_callerrors_and_both_chargers_stay_served() {
    let app = spawn_app().await;
    let site = app.site("CP-FUZZ-A").await;
    let other = app.site_with(&site.operator, "CP-FUZZ-B").await;
    let mut a = app.charger(&site).await;
    let mut b = app.charger(&other).await;
    let cases = cases(app.state.config.ocpp_max_frame_bytes);
    assert!(cases.len() > 300, "{} cases", cases.len());
    let mut wrong = Vec::new();

    for (i, case) in cases.iter().enumerate() {
        match &case.frame {
            Frame::Text(text) => a.send_raw(text).await,
            Frame::Binary(bytes) => a.send_binary(bytes.clone()).await,
        }
        if let Err(e) = check_answer(&mut a, case).await {
            wrong.push(e);
        }
        heartbeat(&mut a, &format!("hb-a-{i}"), &case.what).await;
        heartbeat(&mut b, &format!("hb-b-{i}"), &case.what).await;
        if i % 10 == 0 {
            meter_values(&mut b, &case.what).await;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} frames got the wrong answer:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[actix_rt::test]
async fn a_frame_over_the_limit_closes_that_connection_only() {
    let app = spawn_app().await;
    let site = app.site("CP-BIG-A").await;
    let other = app.site_with(&site.operator, "CP-BIG-B").await;
    let mut a = app.charger(&site).await;
    let mut b = app.charger(&other).await;
    let max = app.state.config.ocpp_max_frame_bytes;

    // One byte over the limit: the frame is not read, so it cannot be answered by its id and
    // the stream cannot resynchronise. The charger is told why, then the connection is closed
    // with 1009 (message too big); the charger reconnects.
    let head = r#"[2,"big","DataTransfer",{"vendorId":"x","data":""#;
    let tail = r#""}]"#;
    let text = format!(
        "{head}{}{tail}",
        "z".repeat(max + 1 - head.len() - tail.len())
    );
    assert_eq!(text.len(), max + 1);
    a.send_raw(&text).await;
    let frame = a.next_frame().await.expect("a CALLERROR before the close");
    assert_eq!(
        (&frame[0], &frame[1], &frame[2]),
        (&json!(4), &json!("-1"), &json!("FormationViolation")),
        "{frame}"
    );
    assert_eq!(a.close_code().await, Some(1009));

    // The other charger never noticed.
    heartbeat(&mut b, "hb-b-1", "the oversized frame").await;
    meter_values(&mut b, "the oversized frame").await;

    // The charger that sent it reconnects and is served again.
    let mut again = app.charger(&site).await;
    heartbeat(&mut again, "hb-a-1", "reconnecting").await;
    heartbeat(&mut b, "hb-b-2", "the reconnection").await;
}
