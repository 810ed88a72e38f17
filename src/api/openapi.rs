//! `/openapi.json`: the OpenAPI 3.1 document of the whole API. It is
//! written by hand (the description of each route is the point of it) and
//! kept honest by the tests below, which compare it with the mounted routes.

use rocket::http::ContentType;
use rocket::Route;

/// The document, compiled into the binary.
const DOCUMENT: &str = include_str!("openapi.json");

pub fn routes() -> Vec<Route> {
    rocket::routes![document]
}

#[rocket::get("/openapi.json")]
fn document() -> (ContentType, &'static str) {
    (ContentType::JSON, DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::DOCUMENT;
    use crate::error::ApiError;

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON")
    }

    /// Rocket's `/containers/<id>` as OpenAPI spells it: `/containers/{id}`.
    fn openapi_path(rocket_path: &str) -> String {
        rocket_path
            .split('/')
            .map(|segment| match segment.strip_prefix('<') {
                Some(name) => format!("{{{}}}", name.trim_end_matches('>')),
                None => segment.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Every mounted route as (METHOD, documented path, query parameters).
    /// The API is documented under `/v1` (`/v0.1` is the same routes), the
    /// health routes at the root, where they are mounted.
    fn mounted() -> BTreeSet<(String, String, BTreeSet<String>)> {
        let api = crate::api::routes().into_iter().map(|r| ("/v1", r));
        let root = crate::api::health_routes().into_iter().map(|r| ("", r));
        api.chain(root)
            .map(|(base, route)| {
                let query = route
                    .uri
                    .query()
                    .map(|q| {
                        q.split('&')
                            .map(|p| p.trim_matches(|c| c == '<' || c == '>').to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                let path = format!("{base}{}", openapi_path(route.uri.path()));
                (route.method.as_str().to_owned(), path, query)
            })
            .collect()
    }

    /// Follows a local `$ref` (`#/components/...`) if `value` is one.
    fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(pointer) => doc
                .pointer(pointer.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {pointer}")),
            None => value,
        }
    }

    /// Every operation in the document as (METHOD, path, query parameters,
    /// path parameters).
    fn documented(doc: &Value) -> Vec<(String, String, BTreeSet<String>, BTreeSet<String>)> {
        let mut operations = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let shared = item.get("parameters").and_then(Value::as_array);
            for (method, operation) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                let own = operation.get("parameters").and_then(Value::as_array);
                let parameters: Vec<&Value> = shared
                    .into_iter()
                    .chain(own)
                    .flatten()
                    .map(|p| resolve(doc, p))
                    .collect();
                let of = |location: &str| -> BTreeSet<String> {
                    parameters
                        .iter()
                        .filter(|p| p["in"] == location)
                        .map(|p| p["name"].as_str().unwrap().to_owned())
                        .collect()
                };
                operations.push((method.to_uppercase(), path.clone(), of("query"), of("path")));
            }
        }
        operations
    }

    #[test]
    fn every_mounted_route_is_documented_and_nothing_else() {
        let doc = document();
        let mounted = mounted();
        let documented: BTreeSet<_> = documented(&doc)
            .into_iter()
            .map(|(method, path, query, _)| (method, path, query))
            .collect();
        let undocumented: Vec<_> = mounted.difference(&documented).collect();
        let not_mounted: Vec<_> = documented.difference(&mounted).collect();
        assert!(
            undocumented.is_empty() && not_mounted.is_empty(),
            "mounted but not documented (or with other query parameters): {undocumented:?}\n\
             documented but not mounted: {not_mounted:?}"
        );
    }

    #[test]
    fn path_parameters_match_the_path_template() {
        for (method, path, _, declared) in documented(&document()) {
            let in_path: BTreeSet<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .map(str::to_owned)
                .collect();
            assert_eq!(in_path, declared, "{method} {path}");
        }
    }

    #[test]
    fn links_name_operations_and_parameters_that_exist() {
        let doc = document();
        let operations = documented(&doc);
        let ids: Vec<(String, BTreeSet<String>)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .iter()
                    .filter(|(method, _)| *method != "parameters")
                    .map(|(method, operation)| {
                        let (_, _, query, in_path) = operations
                            .iter()
                            .find(|(m, p, _, _)| *m == method.to_uppercase() && p == path)
                            .unwrap();
                        let id = operation["operationId"].as_str().unwrap().to_owned();
                        (id, query.union(in_path).cloned().collect())
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        // Every link, wherever it is written (components or a response).
        fn collect<'a>(value: &'a Value, links: &mut Vec<(&'a String, &'a Value)>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::Object(found)) = map.get("links") {
                        links.extend(found.iter().filter(|(_, l)| l.get("$ref").is_none()));
                    }
                    map.values().for_each(|v| collect(v, links));
                }
                Value::Array(items) => items.iter().for_each(|v| collect(v, links)),
                _ => {}
            }
        }
        let mut links = Vec::new();
        collect(&doc, &mut links);
        assert!(links.len() > 10, "{links:?}");
        for (name, link) in links {
            let target = link["operationId"].as_str().unwrap();
            let (_, parameters) = ids
                .iter()
                .find(|(id, _)| id == target)
                .unwrap_or_else(|| panic!("link {name}: no operation {target}"));
            for parameter in link["parameters"].as_object().unwrap().keys() {
                assert!(parameters.contains(parameter), "link {name}: {parameter}");
            }
        }
    }

    #[test]
    fn every_local_reference_resolves() {
        fn walk(doc: &Value, value: &Value) {
            match value {
                Value::Object(map) => {
                    if map.contains_key("$ref") {
                        resolve(doc, value);
                    }
                    map.values().for_each(|v| walk(doc, v));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(doc, v)),
                _ => {}
            }
        }
        let doc = document();
        walk(&doc, &doc);
    }

    /// One of each error, so the documented codes can be compared with the
    /// code table in `error.rs`.
    fn one_of_each_error() -> Vec<ApiError> {
        let text = || String::from("x");
        let errors = vec![
            ApiError::MalformedJson(text()),
            ApiError::InvalidBody(text()),
            ApiError::Validation(text()),
            ApiError::InvalidId(text()),
            ApiError::UnsupportedMediaType {
                got: text(),
                expected: "x",
            },
            ApiError::PayloadTooLarge(text()),
            ApiError::RouteNotFound {
                method: text(),
                path: text(),
            },
            ApiError::MethodNotAllowed {
                method: text(),
                path: text(),
                allowed: text(),
            },
            ApiError::MethodNotImplemented,
            ApiError::ContainerNotFound(text()),
            ApiError::JobNotFound(text()),
            ApiError::TemplateNotFound {
                name: text(),
                node: None,
            },
            ApiError::TemplateMissing(text()),
            ApiError::NameTaken(text()),
            ApiError::ContainerDeleting(text()),
            ApiError::ContainerFailed(text()),
            ApiError::JobFinished(text()),
            ApiError::JobNotCancellable(text()),
            ApiError::TemplateInUse(text()),
            ApiError::BadRequest(text()),
            ApiError::IdempotencyKeyReused(text()),
            ApiError::TemplateExists(text()),
            ApiError::Unauthorized(text()),
            ApiError::TooManyAttempts(1),
            ApiError::CrossOrigin(text()),
            ApiError::HostNotAllowed(text()),
            ApiError::Unavailable,
            ApiError::DatabaseUnavailable(text()),
            ApiError::Unhealthy(text()),
            ApiError::Internal(text()),
            ApiError::NodeNotFound(text()),
            ApiError::UnknownNode(text()),
            ApiError::NodeUnavailable(text()),
            ApiError::AlreadyOnNode(text()),
            ApiError::MoveRefused(text()),
            ApiError::MoveFailed(text()),
            ApiError::ExecBodyTooLarge(text()),
            ApiError::ContainerNotRunning(text()),
            ApiError::ContainerOnOtherNode(text()),
            ApiError::TooManyTerminals(text()),
            ApiError::AttachFailed(text()),
            ApiError::UsageElsewhere(text()),
            ApiError::NodeUnreachable(text()),
            ApiError::UnknownPool(text()),
            ApiError::PoolUnusable(text()),
            ApiError::PoolCannotMove(text()),
            ApiError::SnapshotNotFound(text()),
            ApiError::SnapshotExists(text()),
            ApiError::BackupUnreadable(text()),
            ApiError::BackupNotFound(text()),
            ApiError::BackupElsewhere(text()),
            ApiError::BackupUploadFailed(text()),
        ];
        // Stops compiling when a variant is added, so the list above is
        // extended with it.
        for error in &errors {
            match error {
                ApiError::MalformedJson(_)
                | ApiError::InvalidBody(_)
                | ApiError::Validation(_)
                | ApiError::InvalidId(_)
                | ApiError::UnsupportedMediaType { .. }
                | ApiError::PayloadTooLarge(_)
                | ApiError::RouteNotFound { .. }
                | ApiError::MethodNotAllowed { .. }
                | ApiError::MethodNotImplemented
                | ApiError::ContainerNotFound(_)
                | ApiError::JobNotFound(_)
                | ApiError::TemplateNotFound { .. }
                | ApiError::TemplateMissing(_)
                | ApiError::NameTaken(_)
                | ApiError::ContainerDeleting(_)
                | ApiError::ContainerFailed(_)
                | ApiError::JobFinished(_)
                | ApiError::JobNotCancellable(_)
                | ApiError::TemplateInUse(_)
                | ApiError::BadRequest(_)
                | ApiError::IdempotencyKeyReused(_)
                | ApiError::TemplateExists(_)
                | ApiError::Unauthorized(_)
                | ApiError::TooManyAttempts(_)
                | ApiError::CrossOrigin(_)
                | ApiError::HostNotAllowed(_)
                | ApiError::Unavailable
                | ApiError::DatabaseUnavailable(_)
                | ApiError::Unhealthy(_)
                | ApiError::Internal(_)
                | ApiError::NodeNotFound(_)
                | ApiError::UnknownNode(_)
                | ApiError::NodeUnavailable(_)
                | ApiError::AlreadyOnNode(_)
                | ApiError::MoveRefused(_)
                | ApiError::MoveFailed(_)
                | ApiError::ExecBodyTooLarge(_)
                | ApiError::ContainerNotRunning(_)
                | ApiError::ContainerOnOtherNode(_)
                | ApiError::TooManyTerminals(_)
                | ApiError::AttachFailed(_) => {}
                ApiError::UsageElsewhere(_) | ApiError::NodeUnreachable(_) => {}
                ApiError::UnknownPool(_)
                | ApiError::PoolUnusable(_)
                | ApiError::PoolCannotMove(_)
                | ApiError::SnapshotNotFound(_)
                | ApiError::SnapshotExists(_) => {}
                ApiError::BackupUnreadable(_)
                | ApiError::BackupNotFound(_)
                | ApiError::BackupElsewhere(_)
                | ApiError::BackupUploadFailed(_) => {}
            }
        }
        errors
    }

    #[test]
    fn the_error_codes_and_their_table_match_error_rs() {
        let doc = document();
        let documented: BTreeSet<u64> = doc["components"]["schemas"]["Error"]["properties"]["code"]
            ["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .collect();
        let errors = one_of_each_error();
        let actual: BTreeSet<u64> = errors.iter().map(|e| u64::from(e.code())).collect();
        assert_eq!(documented, actual);
        assert_eq!(actual.len(), errors.len(), "every variant has its own code");
        let table = doc["info"]["description"].as_str().unwrap();
        for error in &errors {
            let row = format!("| {} | {} |", error.code(), error.status().code);
            assert!(table.contains(&row), "the code table lacks {row}");
        }
    }

    #[test]
    fn every_operation_has_an_id_and_documents_its_errors_in_the_error_shape() {
        let doc = document();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                let id = operation["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
                for (status, response) in operation["responses"].as_object().unwrap() {
                    // 101: a WebSocket opened (the terminal).
                    if status.starts_with('2') || status == "101" {
                        continue;
                    }
                    let response = resolve(&doc, response);
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}
