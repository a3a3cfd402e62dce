//! The OpenAPI document against the server: every routed path listed, each parameter
//! where it goes, the common error answers and those found by schema fuzzing documented,
//! and links that lead to real operations and parameters.

use serde_json::{Value, json};

use crate::helpers::*;

/// Every REST path the server routes (crates/server/src/http), with its methods.
const REST_PATHS: &[(&str, &[&str])] = &[
    ("/api/v1/auth/register", &["post"]),
    ("/api/v1/auth/login", &["post"]),
    ("/api/v1/auth/refresh", &["post"]),
    ("/api/v1/auth/logout", &["post"]),
    ("/api/v1/users", &["get"]),
    ("/api/v1/users/me", &["get", "patch"]),
    ("/api/v1/users/me/avatar", &["put", "delete"]),
    ("/api/v1/users/me/export", &["get"]),
    ("/api/v1/users/me/delete", &["post"]),
    ("/api/v1/users/{userId}", &["get"]),
    ("/api/v1/users/{userId}/devices", &["get"]),
    ("/api/v1/mls/devices", &["post"]),
    ("/api/v1/mls/devices/{deviceId}", &["delete"]),
    (
        "/api/v1/mls/devices/{deviceId}/key-packages",
        &["get", "post"],
    ),
    ("/api/v1/mls/devices/{deviceId}/welcomes", &["get"]),
    (
        "/api/v1/mls/devices/{deviceId}/welcomes/{welcomeId}",
        &["delete"],
    ),
    ("/api/v1/mls/key-packages/claim", &["post"]),
    ("/api/v1/users/me/blocks", &["get"]),
    ("/api/v1/users/me/blocks/{userId}", &["put", "delete"]),
    ("/api/v1/admin/users", &["get", "post"]),
    ("/api/v1/admin/users/{userId}", &["get"]),
    ("/api/v1/admin/users/{userId}/disable", &["post"]),
    ("/api/v1/admin/users/{userId}/enable", &["post"]),
    ("/api/v1/admin/users/{userId}/password", &["put"]),
    ("/api/v1/admin/users/{userId}/sessions/revoke", &["post"]),
    ("/api/v1/admin/users/{userId}/admin", &["put", "delete"]),
    ("/api/v1/admin/rooms", &["get"]),
    ("/api/v1/admin/rooms/{roomId}", &["delete"]),
    ("/api/v1/admin/audit", &["get"]),
    ("/api/v1/admin/reports", &["get"]),
    ("/api/v1/admin/reports/{reportId}/resolve", &["post"]),
    ("/api/v1/admin/reports/{reportId}/dismiss", &["post"]),
    ("/api/v1/messages/{messageId}/report", &["post"]),
    (
        "/api/v1/rooms/{roomId}/members/{userId}/mute",
        &["put", "delete"],
    ),
    ("/api/v1/rooms/{roomId}/bans", &["get"]),
    ("/api/v1/rooms/{roomId}/bans/{userId}", &["put", "delete"]),
    ("/api/v1/rooms", &["get"]),
    ("/api/v1/rooms/create", &["post"]),
    ("/api/v1/rooms/{roomId}", &["get", "patch"]),
    ("/api/v1/rooms/{roomId}/picture", &["put", "delete"]),
    ("/api/v1/rooms/{roomId}/members", &["post"]),
    (
        "/api/v1/rooms/{roomId}/members/{userId}",
        &["patch", "delete"],
    ),
    ("/api/v1/rooms/{roomId}/leave", &["post"]),
    ("/api/v1/rooms/{roomId}/accept", &["post"]),
    ("/api/v1/rooms/{roomId}/decline", &["post"]),
    ("/api/v1/rooms/{roomId}/receipts", &["get", "post"]),
    ("/api/v1/messages/send", &["post"]),
    ("/api/v1/messages/history", &["get"]),
    ("/api/v1/messages/{messageId}", &["get", "patch", "delete"]),
    ("/api/v1/chat/{conversationId}", &["get", "post"]),
    ("/api/v1/search", &["get"]),
    ("/api/v1/chat/status/{userId}", &["get"]),
    ("/api/v1/lastseen/{userId}", &["get"]),
    ("/api/v1/presence/{userId}", &["get"]),
    ("/api/v1/media/upload", &["post"]),
    ("/api/v1/media/usage", &["get"]),
    ("/api/v1/media/{mediaId}", &["get"]),
    ("/api/v1/media/{mediaId}/thumbnail", &["get"]),
    ("/api/v1/push/vapid-public-key", &["get"]),
    ("/api/v1/push/subscriptions", &["get", "post"]),
    ("/api/v1/push/subscriptions/{subscriptionId}", &["delete"]),
    ("/api/v1/push/settings", &["get", "put"]),
    ("/api/v1/rooms/{roomId}/mute", &["put", "delete"]),
    ("/api/v1/openapi.json", &["get"]),
    ("/healthz", &["get"]),
    ("/readyz", &["get"]),
    (
        "/api/v1/messages/{messageId}/reactions/{emoji}",
        &["put", "delete"],
    ),
    ("/api/v1/messages/{messageId}/thread", &["get"]),
    ("/api/v1/messages/{messageId}/forward", &["post"]),
    ("/api/v1/rooms/{roomId}/pins", &["get"]),
    (
        "/api/v1/rooms/{roomId}/pins/{messageId}",
        &["put", "delete"],
    ),
    ("/api/v1/rooms/{roomId}/notifications", &["put"]),
    ("/api/v1/auth/login/second-factor", &["post"]),
    ("/api/v1/auth/totp", &["get", "delete"]),
    ("/api/v1/auth/totp/enrol", &["post"]),
    ("/api/v1/auth/totp/confirm", &["post"]),
    ("/api/v1/auth/methods", &["get"]),
    ("/api/v1/auth/sso/{provider}/start", &["get"]),
    ("/api/v1/auth/sso/{provider}/link", &["post"]),
    ("/api/v1/auth/sso/{provider}/callback", &["get"]),
    ("/api/v1/auth/sso/exchange", &["post"]),
];

#[tokio::test]
async fn the_openapi_document_lists_every_rest_path() {
    let app = spawn_app().await;
    let response = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .expect("GET openapi.json");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("body");
    let doc: Value = serde_json::from_str(&text).expect("the document is JSON");

    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "OpenAPI 3.x, got {version}");
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (path, methods) in REST_PATHS {
        match paths.get(*path) {
            None => missing.push(format!("{path} (all)")),
            Some(item) => {
                for method in *methods {
                    if item.get(*method).is_none() {
                        missing.push(format!("{} {path}", method.to_uppercase()));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "missing from openapi.json: {missing:?}");
    // And the list here is complete: a new route needs a row.
    let unlisted: Vec<&String> = paths
        .keys()
        .filter(|p| !REST_PATHS.iter().any(|(known, _)| known == p))
        .collect();
    assert!(unlisted.is_empty(), "add these to REST_PATHS: {unlisted:?}");

    // Bearer authentication is described, and protected operations use it.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(
        paths["/api/v1/rooms"]["get"]["security"].is_array(),
        "GET /rooms needs a bearer token"
    );
    // The wire types are described as schemas.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in ["Room", "Message", "ErrorBody", "AuthResponse", "Presence"] {
        assert!(schemas.contains_key(name), "schema {name}");
    }
}

/// Each documented operation as `(METHOD path, operation)`.
fn operations(doc: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((format!("{} {path}", method.to_uppercase()), op));
        }
    }
    out
}

async fn openapi(app: &TestApp) -> Value {
    reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .expect("GET openapi.json")
        .json()
        .await
        .expect("the document is JSON")
}

// Found by schema fuzzing (tests/schema.rs): the query parameters of history, chat pages,
// user search and raw uploads were documented as required path parameters, so a client
// built from the document could not call them.
#[tokio::test]
async fn the_openapi_document_puts_each_parameter_where_it_goes() {
    let app = spawn_app().await;
    let doc = openapi(&app).await;
    for (name, op) in operations(&doc) {
        let path = name.split(' ').nth(1).expect("path");
        for p in op["parameters"].as_array().into_iter().flatten() {
            let pname = p["name"].as_str().expect("parameter name");
            let templated = path.contains(&format!("{{{pname}}}"));
            match p["in"].as_str() {
                Some("path") => assert!(templated, "{name}: {pname} is not in the path"),
                Some("query") => assert!(!templated, "{name}: {pname} is in the path"),
                other => panic!("{name}: {pname} in {other:?}"),
            }
        }
    }
    let params = |path: &str, method: &str| -> Vec<(String, String, bool)> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or_default().to_owned(),
                    p["in"].as_str().unwrap_or_default().to_owned(),
                    p["required"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    };
    let q = |name: &str, required: bool| (name.to_owned(), "query".to_owned(), required);
    assert_eq!(
        params("/api/v1/messages/history", "get"),
        [
            q("roomId", true),
            q("before", false),
            q("after", false),
            q("limit", false)
        ]
    );
    assert_eq!(
        params("/api/v1/users", "get"),
        [q("q", true), q("limit", false)]
    );
    assert_eq!(
        params("/api/v1/media/upload", "post"),
        [q("filename", false)]
    );
    // And the server reads them from the query, as documented.
    let alice = app.user("alice").await;
    let (status, body) = alice
        .api
        .raw(reqwest::Method::GET, "/api/v1/users?q=ali", None)
        .await
        .expect("search");
    assert_eq!(status, 200, "{body}");
}

// Found by schema fuzzing: the answers the extractors and the auth layer give before any
// handler runs (400, 401, 413) were missing from most operations, and logout's body was
// documented as required although an empty one is accepted.
#[tokio::test]
async fn the_openapi_document_lists_the_common_error_answers() {
    let app = spawn_app().await;
    let doc = openapi(&app).await;
    for (name, op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        let has = |status: &str| responses.contains_key(status);
        if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
            assert!(has("401"), "{name} needs a token but does not document 401");
        }
        let has_params = op["parameters"].as_array().is_some_and(|p| !p.is_empty());
        let has_body = op.get("requestBody").is_some();
        if has_params || has_body {
            assert!(has("400"), "{name} takes input but does not document 400");
        }
        if has_body {
            assert!(has("413"), "{name} takes a body but does not document 413");
            assert!(has("408"), "{name} takes a body but does not document 408");
        }
        for (status, response) in responses {
            // 416 answers a byte range with `Content-Range: bytes */size` and no body.
            if (status.starts_with('4') || status.starts_with('5')) && status != "416" {
                let content = &response["content"];
                assert!(
                    content.get("application/json").is_some(),
                    "{name} {status}: errors have the one error shape"
                );
            }
        }
    }
    assert_eq!(
        doc["paths"]["/api/v1/auth/logout"]["post"]["requestBody"]["required"],
        Value::Null,
        "an empty logout body is accepted, so it is not required"
    );
}

// Found by schema fuzzing with real ids: these answers were given but not documented.
#[tokio::test]
async fn the_answers_found_by_fuzzing_are_documented() {
    let app = spawn_app().await;
    let doc = openapi(&app).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let group = alice.group("Team", &[&bob]).await.id;
    let message = alice.send(group, "hello").await.id;
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let api = alice.api.clone();
        async move {
            api.raw(method, &path, body.as_ref())
                .await
                .expect("request")
        }
    };
    let documented = |template: &str, method: &str, status: u16| {
        doc["paths"][template][method]["responses"]
            .get(status.to_string())
            .is_some()
    };
    use reqwest::Method;
    let cases = [
        (
            Method::DELETE,
            format!("/api/v1/messages/{message}"),
            None,
            "/api/v1/messages/{messageId}",
            200,
        ),
        // Deleted already.
        (
            Method::DELETE,
            format!("/api/v1/messages/{message}"),
            None,
            "/api/v1/messages/{messageId}",
            409,
        ),
        (
            Method::PATCH,
            format!("/api/v1/messages/{message}"),
            Some(json!({"content": "too late"})),
            "/api/v1/messages/{messageId}",
            409,
        ),
        (
            Method::POST,
            format!("/api/v1/rooms/{group}/members"),
            Some(json!({"userIds": []})),
            "/api/v1/rooms/{roomId}/members",
            422,
        ),
        (
            Method::PATCH,
            format!("/api/v1/rooms/{group}"),
            Some(json!({"name": " "})),
            "/api/v1/rooms/{roomId}",
            422,
        ),
        // The owner stepping down without handing ownership on.
        (
            Method::PATCH,
            format!("/api/v1/rooms/{group}/members/{}", alice.id),
            Some(json!({"role": "member"})),
            "/api/v1/rooms/{roomId}/members/{userId}",
            422,
        ),
        (
            Method::POST,
            format!("/api/v1/chat/{group}"),
            Some(json!({"clientMsgId": ""})),
            "/api/v1/chat/{conversationId}",
            422,
        ),
    ];
    for (method, path, body, template, status) in cases {
        let name = format!("{method} {path}");
        let (got, answer) = call(method.clone(), path, body).await;
        assert_eq!(got, status, "{name}: {answer}");
        assert!(
            documented(template, &method.as_str().to_lowercase(), got),
            "{name} answers {got}, which {template} does not document"
        );
    }
}

// Links say which ids an answer carries and where they go next; schema fuzzing follows
// them to reach real rooms, messages and media. Each must name a real operation and only
// parameters that operation has.
#[tokio::test]
async fn the_openapi_links_lead_to_real_operations_and_parameters() {
    let app = spawn_app().await;
    let doc = openapi(&app).await;
    let ops = operations(&doc);
    let by_id = |id: &str| {
        ops.iter()
            .find(|(_, op)| op["operationId"] == id)
            .map(|(_, op)| *op)
            .unwrap_or_else(|| panic!("no operation {id}"))
    };
    let mut count = 0;
    for (name, op) in &ops {
        for (status, response) in op["responses"].as_object().expect("responses") {
            for (link_name, link) in response["links"].as_object().into_iter().flatten() {
                count += 1;
                let target = by_id(link["operationId"].as_str().expect("operationId"));
                for (param, expression) in link["parameters"].as_object().into_iter().flatten() {
                    assert!(
                        target["parameters"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|p| p["name"] == param.as_str()),
                        "{name} {status} {link_name}: {param} is not a parameter of the target"
                    );
                    assert!(
                        expression
                            .as_str()
                            .is_some_and(|e| e.starts_with("$response.body#/")),
                        "{name} {status} {link_name}: {expression}"
                    );
                }
            }
        }
    }
    assert!(count >= 20, "only {count} links");
    // The room a create answers with is where its messages go.
    assert_eq!(
        doc["paths"]["/api/v1/rooms/create"]["post"]["responses"]["201"]["links"]["GetRoom"]["parameters"]
            ["roomId"],
        "$response.body#/id"
    );
    // Bodies too, in the document's camelCase.
    let create = &doc["paths"]["/api/v1/rooms/create"]["post"]["responses"]["201"]["links"];
    assert_eq!(create["Send"]["operationId"], "send");
    assert_eq!(
        create["Send"]["requestBody"]["roomId"],
        "$response.body#/id"
    );
    let register = &doc["paths"]["/api/v1/auth/register"]["post"]["responses"]["201"]["links"];
    assert_eq!(
        register["CreateRoomWith"]["requestBody"]["memberIds"][0],
        "$response.body#/user/id"
    );
}
