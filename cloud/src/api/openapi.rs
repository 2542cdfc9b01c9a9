//! The OpenAPI 3.1 document, generated from the route table ([`super::routes`]) so every
//! route is documented and nothing else is. Request and response schemas are described by
//! each route's summary; errors share one problem-details schema.

use axum::response::IntoResponse;
use serde_json::{json, Map, Value};

/// The document as JSON.
pub fn build() -> Value {
    let mut paths = Map::new();
    for r in super::routes() {
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": r.summary,
            "operationId": operation_id(r.method.as_str(), r.path),
            "parameters": params,
            "responses": {
                "2XX": {"description": "success"},
                "default": {"description": "an error", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            }
        });
        if r.authenticated {
            op["security"] = json!([{ "bearer": [] }]);
        }
        let entry = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(r.method.as_str().to_ascii_lowercase(), op);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Voltline cloud API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "vlt_<id>.<secret>, issued by `voltline-cloud token create`"}},
            "schemas": {"Problem": {
                "type": "object",
                "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"},
                    "status": {"type": "integer"}, "detail": {"type": "string"}
                }
            }}
        }
    })
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.extend(
            seg.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .map(|c| c.to_ascii_lowercase()),
        );
    }
    id
}

/// `GET /openapi.json`.
pub async fn document() -> impl IntoResponse {
    axum::Json(build())
}
