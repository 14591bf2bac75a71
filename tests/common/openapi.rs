//! Checks an answer against the OpenAPI document the code generates, the way the API fuzzer
//! (tests/fuzz/schemathesis.sh) does: the JSON Schema subset utoipa emits (`$ref`, `type` with
//! `null`, `properties`, `required`, `additionalProperties: false`, `items`, `enum`,
//! `oneOf`/`anyOf`/`allOf`).

use serde_json::Value;

/// Panics unless `body` matches the documented schema of the answer `status` to `method path`
/// (`path` as written in the document, e.g. `/api/v1/invoices/{id}`).
pub fn assert_conforms(method: &str, path: &str, status: u16, body: &Value) {
    let doc: Value = serde_json::from_str(&laddkoll::cli::openapi_json()).expect("OpenAPI JSON");
    let op = &doc["paths"][path][method.to_lowercase()];
    assert!(op.is_object(), "{method} {path} is not documented");
    let schema = &op["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} documents no JSON body for {status}"
    );
    let mut problems = Vec::new();
    check(&doc, schema, body, "$", &mut problems);
    assert!(
        problems.is_empty(),
        "{method} {path} {status} breaks its documented schema:\n{}\nbody: {body}",
        problems.join("\n")
    );
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => resolve(doc, doc.pointer(r.trim_start_matches('#')).expect("$ref")),
        None => schema,
    }
}

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        _ => true,
    }
}

fn check(doc: &Value, schema: &Value, v: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    let matches = |s: &Value| {
        let mut p = Vec::new();
        check(doc, s, v, at, &mut p);
        p.is_empty()
    };
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            check(doc, s, v, at, problems);
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array() {
            let n = options.iter().filter(|s| matches(s)).count();
            if n == 0 || (key == "oneOf" && n > 1) {
                problems.push(format!("{at}: {n} of the {key} alternatives match {v}"));
            }
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() && !types.iter().any(|t| type_matches(t, v)) {
        problems.push(format!("{at}: {v} is not of type {types:?}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(v) {
            problems.push(format!("{at}: {v} is not one of {allowed:?}"));
        }
    }
    if let Value::Object(fields) = v {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !fields.contains_key(name) {
                problems.push(format!("{at}: required field {name:?} is missing"));
            }
        }
        let props = schema["properties"].as_object();
        for (name, value) in fields {
            match props.and_then(|p| p.get(name)) {
                Some(s) => check(doc, s, value, &format!("{at}.{name}"), problems),
                None if schema["additionalProperties"] == Value::Bool(false) => {
                    problems.push(format!("{at}: field {name:?} is not documented"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (v, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(doc, item_schema, item, &format!("{at}[{i}]"), problems);
        }
    }
}
