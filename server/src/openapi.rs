//! The OpenAPI 3.1 description of the HTTP API, written by hand so that it says what
//! the handlers do (and a test checks that every route is in it).

use serde_json::{json, Value};

use crate::api::{
    AccountReaders, Admins, AnyStaff, CaseReaders, DeadLetterReaders, DeskOfficers, Finance,
    FinanceReaders, ListKeepers, Policy, Reviewers, Supervisors, Voiders,
};

/// The document served at `/api/v1/openapi.json`.
pub fn document(public_base_url: &str) -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "kozomol API",
            "version": "1",
            "description": "Traffic-camera enforcement back end: the device register, \
                cases with their evidence, dead letters, accounts, fines and payments, the \
                citizens' portal and the pages. A staff route needs \
                `Authorization: Bearer <token>` (or a console session's cookie) of a role \
                listed in the operation's `x-kozomol-roles`; an operation whose `security` is \
                empty is public. Errors are RFC 9457 problem details with a stable `code`.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        },
        "servers": [ { "url": public_base_url.trim_end_matches('/') } ],
        "security": [ { "bearer": [] } ],
        "paths": merged(
            merged(
                merged(merged(paths(), fines_paths()), checks_paths()),
                print_batch_paths(),
            ),
            merged(
                merged(owner_liability_paths(), officer_filings_paths()),
                merged(
                    merged(payment_api_paths(), reconciliation_paths()),
                    merged(web_paths(), oidc_paths())
                )
            )
        ),
        "components": components(),
    })
}

fn roles<P: Policy>() -> Value {
    json!(P::ROLES.iter().map(|r| r.as_str()).collect::<Vec<_>>())
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

fn json_of(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn body_of(schema: &str) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

/// An operation behind a bearer token: adds 401, 403 and 500 answers.
fn secured(roles: Value, mut op: Value) -> Value {
    op["security"] = json!([{ "bearer": [] }]);
    op["x-kozomol-roles"] = roles;
    let responses = op["responses"]
        .as_object_mut()
        .expect("every operation lists its responses");
    responses.insert(
        "401".into(),
        problem("No token, or an unknown one (`unauthenticated`)."),
    );
    responses.insert(
        "403".into(),
        problem("The token's role may not use this route (`forbidden`)."),
    );
    responses.insert(
        "500".into(),
        problem("Internal error; details are only logged (`internal`)."),
    );
    op
}

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn case_id_param() -> Value {
    path_param(
        "id",
        "Numeric case id.",
        json!({ "type": "integer", "format": "int64" }),
    )
}

fn paging_params() -> Vec<Value> {
    vec![
        query_param(
            "limit",
            "Page size.",
            json!({ "type": "integer", "minimum": 1, "maximum": 1000, "default": 50 }),
        ),
        query_param(
            "cursor",
            "The `next` value of the previous page.",
            json!({ "type": "string" }),
        ),
    ]
}

fn paths() -> Value {
    let camera_id = path_param(
        "id",
        "Camera id.",
        json!({ "type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$" }),
    );
    let case_id = case_id_param();
    let mut case_params = vec![
        query_param(
            "state",
            "Case state.",
            json!({ "$ref": "#/components/schemas/CaseState" }),
        ),
        query_param("camera", "Camera id.", json!({ "type": "string" })),
        query_param(
            "plate",
            "Plate text; spaces and dashes are ignored, letters compared upper case.",
            json!({ "type": "string" }),
        ),
        query_param(
            "from",
            "Capture time, inclusive (RFC 3339).",
            json!({ "type": "string", "format": "date-time" }),
        ),
        query_param(
            "to",
            "Capture time, exclusive (RFC 3339).",
            json!({ "type": "string", "format": "date-time" }),
        ),
        query_param(
            "undeliverable",
            "Only cases whose resolution waits for a person: issued, not proven delivered, and no delivery of it still under way.",
            json!({ "type": "boolean" }),
        ),
    ];
    case_params.extend(paging_params());

    json!({
        "/healthz": { "get": {
            "operationId": "healthz",
            "summary": "The process is alive.",
            "security": [],
            "responses": { "200": json_of("Alive.", "Status") }
        }},
        "/readyz": { "get": {
            "operationId": "readyz",
            "summary": "The process has started its parts and its database answers.",
            "security": [],
            "responses": {
                "200": json_of("Ready.", "Status"),
                "503": problem("Not ready yet (`not_ready`).")
            }
        }},
        "/metrics": { "get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics: ingest counters (dead letters by reason), cameras registered and online, HTTP responses by status class.",
            "security": [],
            "responses": {
                "200": { "description": "Prometheus text format 0.0.4.",
                         "content": { "text/plain": { "schema": { "type": "string" } } } },
                "500": problem("The store did not answer (`internal`).")
            }
        }},
        "/api/v1/openapi.json": { "get": secured(roles::<AnyStaff>(), json!({
            "operationId": "openapi",
            "summary": "This document.",
            "responses": { "200": { "description": "OpenAPI 3.1 document.",
                                    "content": { "application/json": { "schema": { "type": "object" } } } } }
        }))},
        "/api/v1/auth/token": { "post": {
            "operationId": "issueToken",
            "summary": "Exchange a login and password for a new bearer token. At most 5 failures per login per minute.",
            "security": [],
            "requestBody": body_of("LoginRequest"),
            "responses": {
                "200": json_of("A new token; it is shown only here.", "TokenAnswer"),
                "400": problem("Not JSON (`bad_request`)."),
                "401": problem("Login or password wrong (`invalid_credentials`)."),
                "422": problem("Fields missing (`validation_failed`)."),
                "429": problem("Too many failures for this login; see Retry-After (`too_many_attempts`).")
            }
        }},
        "/api/v1/accounts": {
            "get": secured(roles::<AccountReaders>(), json!({
                "operationId": "listAccounts",
                "summary": "Every account with its role.",
                "responses": { "200": json_of("Accounts.", "AccountList") }
            })),
            "post": secured(roles::<Admins>(), json!({
                "operationId": "createAccount",
                "summary": "Create an account.",
                "requestBody": body_of("NewAccount"),
                "responses": {
                    "201": json_of("Created.", "Account"),
                    "400": problem("Not JSON (`bad_request`)."),
                    "409": problem("The login or the badge is taken (`conflict`)."),
                    "422": problem("Every invalid field, in `errors` (`validation_failed`); a reviewer or supervisor needs `full_name` and `badge`.")
                }
            }))
        },
        "/api/v1/accounts/{login}": { "patch": secured(roles::<Admins>(), json!({
            "operationId": "changeAccount",
            "summary": "Change an account's role, set a new password, or disable or enable it. A new password or disabling ends its tokens and sessions.",
            "parameters": [{ "name": "login", "in": "path", "required": true, "schema": { "type": "string" } }],
            "requestBody": body_of("AccountChange"),
            "responses": {
                "200": json_of("The account as changed.", "Account"),
                "400": problem("Not JSON (`bad_request`)."),
                "404": problem("No such account (`not_found`)."),
                "409": problem("No admin in use would be left (`conflict`)."),
                "422": problem("Every invalid field, in `errors` (`validation_failed`).")
            }
        }))},
        "/api/v1/auth/password": { "put": secured(roles::<AnyStaff>(), json!({
            "operationId": "changeOwnPassword",
            "summary": "The caller's own new password, given the current one (failures count as failed logins). Every token and session of the account ends, this one too.",
            "requestBody": body_of("PasswordChange"),
            "responses": {
                "204": { "description": "Changed; log in again." },
                "400": problem("Not JSON (`bad_request`)."),
                "401": problem("The current password is wrong (`invalid_credentials`)."),
                "422": problem("Every invalid field, in `errors` (`validation_failed`)."),
                "429": problem("Too many failures for this login; see Retry-After (`too_many_attempts`).")
            }
        }))},
        "/api/v1/accounts/{login}/officer": { "put": secured(roles::<Admins>(), json!({
            "operationId": "registerOfficer",
            "summary": "Set the account's entry in the officers' register: the name and badge a resolution names its confirming officer by.",
            "parameters": [{ "name": "login", "in": "path", "required": true, "schema": { "type": "string" } }],
            "requestBody": body_of("Officer"),
            "responses": {
                "200": json_of("The account with its entry.", "Account"),
                "400": problem("Not JSON (`bad_request`)."),
                "404": problem("No such account (`not_found`)."),
                "409": problem("The badge is another officer's (`conflict`)."),
                "422": problem("Every invalid field, in `errors` (`validation_failed`).")
            }
        }))},
        "/api/v1/server-key": { "get": secured(roles::<AnyStaff>(), json!({
            "operationId": "serverKey",
            "summary": "The public key cameras verify signed config with.",
            "responses": { "200": json_of("The key.", "ServerKey") }
        }))},
        "/api/v1/cameras": {
            "get": secured(roles::<AnyStaff>(), json!({
                "operationId": "listCameras",
                "summary": "The device register with each camera's last-known status.",
                "responses": { "200": json_of("Cameras.", "CameraList") }
            })),
            "post": secured(roles::<Admins>(), json!({
                "operationId": "registerCamera",
                "summary": "Register a camera, or update it (its certificate is added to the device's list).",
                "requestBody": body_of("CameraRegistration"),
                "responses": {
                    "201": {
                        "description": "Registered; Location names the camera.",
                        "headers": { "Location": { "schema": { "type": "string" } } },
                        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Camera" } } }
                    },
                    "400": problem("Not JSON (`bad_request`)."),
                    "422": problem("Every invalid field, in `errors` (`validation_failed`).")
                }
            }))
        },
        "/api/v1/cameras/{id}": { "get": secured(roles::<AnyStaff>(), json!({
            "operationId": "getCamera",
            "summary": "One camera.",
            "parameters": [camera_id.clone()],
            "responses": {
                "200": json_of("The camera.", "Camera"),
                "404": problem("No such camera (`not_found`).")
            }
        }))},
        "/api/v1/cameras/{id}/config": { "put": secured(roles::<Admins>(), json!({
            "operationId": "putCameraConfig",
            "summary": "Sign a camera config with the server key and publish it, retained, on kozomol/v1/cameras/{id}/config.",
            "parameters": [camera_id],
            "requestBody": body_of("CameraConfig"),
            "responses": {
                "200": json_of("Published.", "ConfigPublished"),
                "400": problem("Not JSON (`bad_request`)."),
                "404": problem("No such camera (`not_found`)."),
                "422": problem("Every invalid field, in `errors` (`validation_failed`)."),
                "502": problem("The broker refused the publish (`config_publish_failed`)."),
                "503": problem("This process has no broker connection (`config_unavailable`).")
            }
        }))},
        "/api/v1/cases": { "get": secured(roles::<CaseReaders>(), json!({
            "operationId": "listCases",
            "summary": "Cases by ascending id, filtered, one page at a time.",
            "parameters": case_params,
            "responses": {
                "200": json_of("One page.", "CasePage"),
                "400": problem("Invalid parameters, each in `errors` (`invalid_query`).")
            }
        }))},
        "/api/v1/cases/{id}": { "get": secured(roles::<CaseReaders>(), json!({
            "operationId": "getCase",
            "summary": "One case: the signed event, frames with their links, enforceability, audit trail.",
            "parameters": [case_id.clone()],
            "responses": {
                "200": json_of("The case.", "CaseDetail"),
                "400": problem("The id is not a number (`bad_request`)."),
                "404": problem("No such case (`not_found`).")
            }
        }))},
        "/api/v1/cases/{id}/frames/{n}": { "get": secured(roles::<CaseReaders>(), json!({
            "operationId": "getCaseFrame",
            "summary": "A frame's JPEG bytes, re-verified against their SHA-256 before they are sent.",
            "parameters": [
                case_id,
                path_param("n", "Frame number, from 0.", json!({ "type": "integer", "minimum": 0 }))
            ],
            "responses": {
                "200": {
                    "description": "The frame; ETag is its SHA-256.",
                    "headers": { "ETag": { "schema": { "type": "string" } } },
                    "content": { "image/jpeg": { "schema": { "type": "string", "contentMediaType": "image/jpeg" } } }
                },
                "400": problem("Id or number not a number (`bad_request`)."),
                "404": problem("No such case or frame (`not_found`)."),
                "410": problem("The case file was destroyed at the end of its archive period (`evidence_destroyed`)."),
                "500": problem("The stored bytes no longer match their hash (`evidence_corrupt`); nothing is served.")
            }
        }))},
        "/api/v1/cases/{id}/plate-crop": { "get": secured(roles::<CaseReaders>(), json!({
            "operationId": "getCasePlateCrop",
            "summary": "The plate as the recognizer cut it out of a frame (JPEG), re-verified against its SHA-256.",
            "parameters": [case_id],
            "responses": {
                "200": {
                    "description": "The crop; ETag is its SHA-256.",
                    "headers": { "ETag": { "schema": { "type": "string" } } },
                    "content": { "image/jpeg": { "schema": { "type": "string", "contentMediaType": "image/jpeg" } } }
                },
                "400": problem("Id not a number (`bad_request`)."),
                "404": problem("No such case, or no plate read on it yet (`not_found`)."),
                "410": problem("The case file was destroyed at the end of its archive period (`evidence_destroyed`)."),
                "500": problem("The stored bytes no longer match their hash (`evidence_corrupt`); nothing is served.")
            }
        }))},
        "/api/v1/cases/{id}/review": { "post": secured(roles::<Reviewers>(), json!({
            "operationId": "reviewCase",
            "summary": "Approve, correct the plate or reject (with a reason code). A reviewer's approval stands when it agrees with a strong machine read; otherwise the case goes to a supervisor, whose decision is final. Audited with who and when.",
            "parameters": [case_id],
            "requestBody": body_of("ReviewRequest"),
            "responses": {
                "200": json_of("Where the case went.", "ReviewResult"),
                "400": problem("Id not a number or body not JSON (`bad_request`)."),
                "404": problem("No such case (`not_found`)."),
                "409": problem("The case is not open to this review, or moved on meanwhile (`conflict`)."),
                "422": problem("Unknown decision or reason, a rejection without a reason, a correction without a plate (`validation_failed`).")
            }
        }))},
        "/api/v1/cases/{id}/reviews": { "get": secured(roles::<CaseReaders>(), json!({
            "operationId": "listCaseReviews",
            "summary": "The review decisions on a case, oldest first.",
            "parameters": [case_id],
            "responses": {
                "200": { "description": "The decisions.", "content": { "application/json": { "schema": {
                    "type": "array", "items": { "$ref": "#/components/schemas/Review" } } } } },
                "400": problem("Id not a number (`bad_request`)."),
                "404": problem("No such case (`not_found`).")
            }
        }))},
        "/api/v1/dead-letters": { "get": secured(roles::<DeadLetterReaders>(), json!({
            "operationId": "listDeadLetters",
            "summary": "Refused messages by ascending id, one page at a time (without their bytes).",
            "parameters": paging_params(),
            "responses": {
                "200": json_of("One page.", "DeadLetterPage"),
                "400": problem("Invalid parameters (`invalid_query`).")
            }
        }))},
        "/api/v1/dead-letters/{id}/raw": { "get": secured(roles::<DeadLetterReaders>(), json!({
            "operationId": "getDeadLetterRaw",
            "summary": "The refused message's bytes as received (the first 64 KiB are kept, all of an `unstorable` event), until the retention purge drops them.",
            "parameters": [path_param("id", "Dead letter id.", json!({ "type": "integer", "format": "int64" }))],
            "responses": {
                "200": { "description": "Raw bytes.",
                         "content": { "application/octet-stream": { "schema": { "type": "string", "contentMediaType": "application/octet-stream" } } } },
                "400": problem("The id is not a number (`bad_request`)."),
                "404": problem("No such dead letter (`not_found`)."),
                "410": problem("The bytes were dropped by the retention purge (`evidence_destroyed`; `raw_kept` is 0).")
            }
        }))}
    })
}

/// The print room's routes (a `json!` of their own: the others are at the macro's
/// recursion limit).
fn print_batch_paths() -> Value {
    let batch_id = path_param(
        "id",
        "The print batch's id.",
        json!({ "type": "integer", "format": "int64" }),
    );
    let printed = json!({ "type": "object", "properties": {
        "id": { "type": "integer" },
        "recorded": { "type": "string", "enum": ["first", "already_recorded"] },
        "printed_at": { "type": "string", "format": "date-time" },
        "printed_by": { "type": "string" }
    } });
    json!({
        "/api/v1/print-batches": { "get": secured(roles::<DeskOfficers>(), json!({
            "operationId": "listPrintBatches",
            "summary": "The letters the delivery worker merged for the post, batch by batch in id order: pages, letters, when and by whom printed, the PDF's link.",
            "parameters": [
                query_param("printed", "false: waiting for the print room; true: printed.", json!({ "type": "boolean" })),
                query_param("after", "The last id of the previous page.", json!({ "type": "integer" })),
                query_param("limit", "1 to 1000, default 100.", json!({ "type": "integer", "minimum": 1, "maximum": 1000 }))
            ],
            "responses": {
                "200": { "description": "A page.", "content": { "application/json": { "schema": {
                    "type": "object", "properties": {
                        "items": { "type": "array", "items": { "type": "object" } },
                        "next": { "type": ["integer", "null"] }
                    } } } } },
                "400": problem("A parameter of the wrong type, or a limit out of range (`bad_request`, `invalid_query`).")
            }
        }))},
        "/api/v1/print-batches/{id}/pdf": { "get": secured(roles::<DeskOfficers>(), json!({
            "operationId": "getPrintBatchPdf",
            "summary": "The batch's merged letters as stored. They name every addressee: each download is audited as a view of each case's owner data.",
            "parameters": [batch_id],
            "responses": {
                "200": { "description": "The PDF.", "content": { "application/pdf": { "schema": { "type": "string", "contentMediaType": "application/pdf" } } } },
                "400": problem("The id is not a number (`bad_request`)."),
                "404": problem("No such print batch (`not_found`)."),
                "410": problem("A case it serves had its file destroyed at the end of its archive period (`evidence_destroyed`): the batch names that owner."),
                "500": problem("The stored bytes no longer match their hash (`evidence_corrupt`); nothing is served.")
            }
        }))},
        "/api/v1/print-batches/{id}/printed": { "post": secured(roles::<DeskOfficers>(), json!({
            "operationId": "recordPrintBatchPrinted",
            "summary": "The print room printed and posted the batch: recorded once, audited; again, the first record is answered. Each letter's proof is still its return receipt.",
            "parameters": [batch_id],
            "responses": {
                "200": { "description": "Recorded, now or before.", "content": { "application/json": { "schema": printed } } },
                "400": problem("The id is not a number (`bad_request`)."),
                "404": problem("No such print batch (`not_found`).")
            }
        }))}
    })
}

/// The routes after issuing: appeals, voids, refunds, resolutions (a second `json!`
/// because one would pass the macro's recursion limit).
fn fines_paths() -> Value {
    let case_id = case_id_param();
    let appeal_id = path_param(
        "id",
        "The appeal's id.",
        json!({ "type": "integer", "format": "int64" }),
    );
    let number = resolution_number_param();
    json!({
        "/api/v1/cases/{id}/appeals": {
            "get": secured(roles::<CaseReaders>(), json!({
                "operationId": "listCaseAppeals",
                "summary": "The case's appeals, oldest first, with their attachments' names, types and hashes.",
                "parameters": [case_id],
                "responses": {
                    "200": { "description": "The appeals.", "content": { "application/json": { "schema": {
                        "type": "array", "items": { "$ref": "#/components/schemas/Appeal" } } } } },
                    "400": problem("Id not a number (`bad_request`)."),
                    "404": problem("No such case (`not_found`).")
                }
            })),
            "post": secured(roles::<DeskOfficers>(), json!({
                "operationId": "fileAppeal",
                "summary": "Take in an appeal against the case's resolution, with up to 10 files (JPEG, PNG, PDF; 10 MiB each, base64). The case moves to `appealed` and its clocks pause. Audited.",
                "parameters": [case_id],
                "requestBody": body_of("AppealRequest"),
                "responses": {
                    "201": json_of("Filed.", "Appeal"),
                    "400": problem("Id not a number or body not JSON (`bad_request`)."),
                    "404": problem("No such case (`not_found`)."),
                    "409": problem("No resolution, a state that takes no appeal, an appeal already open, or the window closed (`conflict`)."),
                    "413": { "description": "The body is larger than ten attachments." },
                    "422": problem("Missing appellant or grounds, a file of the wrong type, size or content (`validation_failed`).")
                }
            }))
        },
        "/api/v1/appeals/{id}/decision": { "post": secured(roles::<Supervisors>(), json!({
            "operationId": "decideAppeal",
            "summary": "Decide an open appeal: `rejected` (the resolution stands; its clocks are dated again from today) or `annulled` (with a refund request when money was taken). Audited.",
            "parameters": [appeal_id],
            "requestBody": body_of("AppealDecision"),
            "responses": {
                "200": json_of("Decided.", "AppealDecisionResult"),
                "400": problem("Id not a number or body not JSON (`bad_request`)."),
                "404": problem("No such appeal (`not_found`)."),
                "409": problem("Decided already (`conflict`)."),
                "422": problem("Unknown decision, or no note (`validation_failed`).")
            }
        }))},
        "/api/v1/appeals/{id}/attachments/{n}": { "get": secured(roles::<CaseReaders>(), json!({
            "operationId": "getAppealAttachment",
            "summary": "One of the appellant's files, with its type, re-verified against its SHA-256.",
            "parameters": [appeal_id, path_param("n", "The attachment's position, from 0.", json!({ "type": "integer", "minimum": 0 }))],
            "responses": {
                "200": { "description": "The file.", "content": { "*/*": { "schema": { "type": "string" } } } },
                "400": problem("Id or position not a number (`bad_request`)."),
                "404": problem("No such appeal or attachment (`not_found`)."),
                "410": problem("The case file was destroyed at the end of its archive period (`evidence_destroyed`)."),
                "500": problem("The stored bytes no longer match their hash (`evidence_corrupt`).")
            }
        }))},
        "/api/v1/bulk-voids": { "post": secured(roles::<Voiders>(), json!({
            "operationId": "bulkVoid",
            "summary": "Void every case not yet closed whose event names the device and whose capture falls in [captured_from, captured_until): open appeals end, clocks stop, paid cases get refund requests. Audited per case.",
            "requestBody": body_of("BulkVoidRequest"),
            "responses": {
                "201": json_of("Voided.", "BulkVoidResult"),
                "400": problem("Body not JSON (`bad_request`)."),
                "422": problem("Missing fields or an empty time range (`validation_failed`).")
            }
        }))},
        "/api/v1/refund-requests/{id}/settlement": { "post": secured(roles::<Finance>(), json!({
            "operationId": "settleRefundRequest",
            "summary": "Settles a queued refund once: `refunded` with the transfer's `reference`, or `cancelled` with a `note` saying why; a `withdrawn` excess takes `refunded` alone (a transfer made before the reversal). The same settlement again answers 200 as it stands. Audited (`case.refund_settled`).",
            "parameters": [path_param("id", "The refund request's id.", json!({ "type": "integer" }))],
            "requestBody": body_of("RefundSettlement"),
            "responses": {
                "200": json_of("The request, settled.", "RefundRequest"),
                "404": problem("No such refund request (`not_found`)."),
                "409": problem("Settled already (`conflict`)."),
                "422": problem("Fields wrong (`validation_failed`).")
            }
        }))},
        "/api/v1/refund-requests": { "get": secured(roles::<FinanceReaders>(), json!({
            "operationId": "listRefundRequests",
            "summary": "Refunds owed, in id order: the money of a paid resolution an annulment or a bulk void ended, and each payment's excess beyond its fine.",
            "parameters": [
                { "name": "after", "in": "query", "required": false, "description": "The last id of the previous page.", "schema": { "type": "integer" } },
                { "name": "limit", "in": "query", "required": false, "description": "1 to 1000; default 100.", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
            ],
            "responses": {
                "200": json_of("One page.", "RefundPage"),
                "400": problem("Parameters not numbers (`bad_request`), or the limit out of range (`invalid_query`).")
            }
        }))},
        "/api/v1/resolutions/{number}": { "get": secured(roles::<CaseReaders>(), json!({
            "operationId": "getResolution",
            "summary": "An issued resolution: number, case, payment code, article, amounts, the PDF's SHA-256 and its detached signature.",
            "parameters": [number],
            "responses": {
                "200": json_of("The resolution.", "Resolution"),
                "400": problem("Not a resolution number (`bad_request`)."),
                "404": problem("No such resolution (`not_found`).")
            }
        }))},
        "/api/v1/resolutions/{number}/pdf": { "get": secured(roles::<CaseReaders>(), json!({
            "operationId": "getResolutionPdf",
            "summary": "The resolution's PDF, byte for byte as issued and signed, re-verified against its SHA-256.",
            "parameters": [number],
            "responses": {
                "200": {
                    "description": "The PDF; ETag is its SHA-256.",
                    "headers": { "ETag": { "schema": { "type": "string" } } },
                    "content": { "application/pdf": { "schema": { "type": "string", "contentMediaType": "application/pdf" } } }
                },
                "400": problem("Not a resolution number (`bad_request`)."),
                "404": problem("No such resolution (`not_found`)."),
                "410": problem("The case file was destroyed at the end of its archive period (`evidence_destroyed`)."),
                "500": problem("The stored bytes no longer match their hash (`evidence_corrupt`); nothing is served.")
            }
        }))},
        "/api/v1/resolutions/{number}/deliveries": {
            "get": secured(roles::<CaseReaders>(), json!({
                "operationId": "listResolutionDeliveries",
                "summary": "The resolution's deliveries from the outbox and those reported to it: channel, address, state, attempts, the channel's id, when sent and delivered, and the proof.",
                "parameters": [number],
                "responses": {
                    "200": { "description": "The deliveries.", "content": { "application/json": { "schema": {
                        "type": "array", "items": { "type": "object" } } } } },
                    "400": problem("Not a resolution number (`bad_request`)."),
                    "404": problem("No such resolution (`not_found`).")
                }
            })),
            "post": secured(roles::<DeskOfficers>(), json!({
                "operationId": "recordDeliveryProof",
                "summary": "Record a proof of delivery that came back outside the outbox: a posted letter's return receipt, or another system's report. The first proof starts the clocks; the same proof again changes nothing.",
                "parameters": [number],
                "requestBody": body_of("DeliveryProof"),
                "responses": {
                    "200": json_of("Recorded.", "DeliveryProofResult"),
                    "400": problem("Not a resolution number or body not JSON (`bad_request`)."),
                    "404": problem("No such resolution (`not_found`)."),
                    "409": problem("A return receipt for a resolution with no letter sent (`conflict`)."),
                    "422": problem("Unknown kind, no time, a time before issuing or in the future (`validation_failed`).")
                }
            }))
        },
        "/api/v1/owners/{owner_id}/contacts": { "post": secured(roles::<DeskOfficers>(), json!({
            "operationId": "addOwnerContact",
            "summary": "A phone number (E.164) or e-mail address an owner leaves for notices; their resolutions not yet delivered are queued to it.",
            "parameters": [path_param("owner_id", "The owner's PIN or INN, as the owner lookup names them.", json!({ "type": "string" }))],
            "requestBody": body_of("ContactRequest"),
            "responses": {
                "201": json_of("Added.", "ContactResult"),
                "200": json_of("Known already; nothing changed.", "ContactResult"),
                "400": problem("Body not JSON (`bad_request`)."),
                "422": problem("Unknown channel, or an address that channel cannot use (`validation_failed`).")
            }
        }))},
        "/api/v1/resolutions/{number}/verify": { "post": {
            "operationId": "verifyResolution",
            "summary": "Whether a PDF is this resolution as issued, signed with a published key. Anyone may ask.",
            "security": [],
            "parameters": [number],
            "requestBody": { "required": true, "content": {
                "application/pdf": { "schema": { "type": "string", "contentMediaType": "application/pdf" } },
                // The bytes are what is checked, whatever type the sender names.
                "application/octet-stream": { "schema": { "type": "string", "format": "binary" } }
            } },
            "responses": {
                "200": json_of("The verdict; `valid` is true only for the exact bytes issued.", "Verification"),
                "400": problem("Not a resolution number, or no body (`bad_request`)."),
                "404": problem("No such resolution (`not_found`)."),
                "413": { "description": "Larger than any resolution (16 MiB)." }
            }
        }},
        "/api/v1/resolution-keys": { "get": {
            "operationId": "resolutionKeys",
            "summary": "The public keys resolution signatures verify with (the signing key and earlier ones still trusted).",
            "security": [],
            "responses": { "200": json_of("The keys.", "ResolutionKeys") }
        }}
    })
}

/// A payment provider's operation: signed with its secret (`Kozomol-Signature`), not a
/// bearer token; adds the answers every one of them gives.
fn provider_signed(mut op: Value) -> Value {
    op["security"] = json!([{ "providerSignature": [] }]);
    let provider = path_param(
        "provider",
        "The provider's id, as configured in `[[payment_providers]]`.",
        json!({ "type": "string", "pattern": "^[a-z0-9_-]{1,40}$" }),
    );
    let mut parameters = vec![provider];
    if let Some(more) = op["parameters"].as_array() {
        parameters.extend(more.iter().cloned());
    }
    op["parameters"] = json!(parameters);
    let responses = op["responses"]
        .as_object_mut()
        .expect("every operation lists its responses");
    responses.insert(
        "401".into(),
        problem(
            "Unsigned, signed with no secret in force, an unknown provider \
             (`signature_invalid`), or a `t` more than 300 s from now (`signature_stale`).",
        ),
    );
    responses.insert(
        "500".into(),
        problem("Internal error; details are only logged (`internal`)."),
    );
    op
}

/// The REST payment API of payment providers, and finance's view of their callbacks.
fn payment_api_paths() -> Value {
    let intent_id = path_param(
        "id",
        "The intent's id (`pi_...`).",
        json!({ "type": "string" }),
    );
    let idempotency_key = |required: bool| {
        json!({ "name": "Idempotency-Key", "in": "header", "required": required,
                "description": "Stripe's semantics: the first response to a request with this key is kept 24 h and replayed (with `Idempotent-Replayed: true`) to the same request; the key with other parameters is refused.",
                "schema": { "type": "string", "minLength": 1, "maxLength": 255 } })
    };
    json!({
        "/api/v1/providers/{provider}/payment-intents": { "post": provider_signed(json!({
            "operationId": "createPaymentIntent",
            "summary": "An offer to pay one fine: by default the amount due today (the discounted sum within its window), or a part of it, or more.",
            "parameters": [idempotency_key(true)],
            "requestBody": body_of("NewPaymentIntent"),
            "responses": {
                "201": json_of("The intent, with what the fine asks for today.", "PaymentIntent"),
                "400": problem("No Idempotency-Key, or not JSON (`bad_request`)."),
                "404": problem("No resolution has the code (`unknown_payment_code`)."),
                "409": problem("The fine is paid (`already_paid`), closed (`case_closed`) or under appeal (`not_payable`); the key's first request is still being answered (`idempotency_key_in_use`)."),
                "422": problem("Fields wrong (`validation_failed`), another currency (`invalid_money`), or the key used with other parameters (`idempotency_key_reused`).")
            }
        }))},
        "/api/v1/providers/{provider}/payment-intents/{id}": { "get": provider_signed(json!({
            "operationId": "getPaymentIntent",
            "summary": "One of the provider's intents, with what its fine asks for now. Signed over an empty body.",
            "parameters": [intent_id],
            "responses": {
                "200": json_of("The intent.", "PaymentIntent"),
                "404": problem("The provider has no such intent (`not_found`).")
            }
        }))},
        "/api/v1/providers/{provider}/payment-intents/{id}/cancel": { "post": provider_signed(json!({
            "operationId": "cancelPaymentIntent",
            "summary": "Cancels an unpaid intent (again: the same answer); a payment reported for it later is refused.",
            "parameters": [intent_id, idempotency_key(false)],
            "responses": {
                "200": json_of("The cancelled intent.", "PaymentIntent"),
                "404": problem("The provider has no such intent (`not_found`)."),
                "409": problem("The intent was paid: reverse its payment instead (`intent_paid`)."),
                "422": problem("The key used with other parameters (`idempotency_key_reused`).")
            }
        }))},
        "/api/v1/providers/{provider}/callbacks": { "post": provider_signed(json!({
            "operationId": "paymentCallback",
            "summary": "The provider reports a payment (`payment.succeeded`) or takes one back (`payment.reversed`). Applied once per provider payment id however often it is sent; every callback is recorded with its answer.",
            "requestBody": body_of("PaymentCallback"),
            "responses": {
                "200": json_of("Applied now (`applied`) or before (`repeat`).", "PaymentCallbackAnswer"),
                "400": problem("Not JSON (`bad_request`)."),
                "404": problem("No resolution has the code (`unknown_payment_code`), no such intent (`unknown_intent`), no such payment to reverse (`unknown_payment`)."),
                "409": problem("The fine is paid (`already_paid`), closed (`case_closed`), under appeal (`not_payable`); the intent cancelled (`intent_cancelled`) or paid (`intent_paid`); the payment id used for another payment (`payment_id_reused`); a case whose money is refunded, not reversed (`not_reversible`)."),
                "422": problem("Fields wrong (`validation_failed`), the amount not the intent's (`amount_mismatch`), the intent for another fine (`intent_for_other_fine`), another currency (`invalid_money`), an unknown event type (`unknown_event_type`).")
            }
        }))},
        "/api/v1/payment-callbacks": { "get": secured(roles::<FinanceReaders>(), json!({
            "operationId": "listPaymentCallbacks",
            "summary": "Every callback providers sent, with its answer, in id order; `refused=true` for those not taken.",
            "parameters": [
                { "name": "refused", "in": "query", "required": false, "description": "Only the refused ones.", "schema": { "type": "boolean" } },
                { "name": "after", "in": "query", "required": false, "description": "The last id of the previous page.", "schema": { "type": "integer" } },
                { "name": "limit", "in": "query", "required": false, "description": "1 to 1000; default 100.", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
            ],
            "responses": {
                "200": json_of("One page.", "PaymentCallbackPage"),
                "400": problem("Parameters not numbers (`bad_request`), or the limit out of range (`invalid_query`).")
            }
        }))}
    })
}

/// Bank statements, the queue of credits no fine took, and the daily totals.
fn reconciliation_paths() -> Value {
    json!({
        "/api/v1/statements": { "post": secured(roles::<Finance>(), json!({
            "operationId": "importStatement",
            "summary": "Imports a bank statement of the city's account (ISO 20022 camt.053, or CSV with the columns booking_date, amount, currency, reference, remittance and optionally payer). Each credit is matched to the payment a bank or provider reported earlier (the same money counts once), applied as a payment of its own, or queued for finance. Importing it again changes nothing. A statement with any problem is refused whole.",
            "parameters": [
                { "name": "format", "in": "query", "required": false, "description": "`camt053` or `csv`; by default from the content type (XML or CSV).", "schema": { "type": "string", "enum": ["camt053", "csv"] } },
                { "name": "account", "in": "query", "required": false, "description": "The account a CSV statement is of (camt.053 names its own).", "schema": { "type": "string" } }
            ],
            "requestBody": { "required": true, "content": {
                "application/xml": { "schema": { "type": "string" } },
                "text/csv": { "schema": { "type": "string" } }
            } },
            "responses": {
                "200": json_of("What became of each credit.", "StatementImport"),
                "400": problem("No format (`bad_request`)."),
                "409": problem("A credit the bank took back was applied to a fine while the statement was taken (`conflict`): the credits before it stand; import the statement again."),
                "413": problem("Larger than 32 MiB."),
                "422": problem("The statement's problems, each with its line or entry (`validation_failed`); an unknown format (`invalid_query`).")
            }
        }))},
        "/api/v1/statement-lines": { "get": secured(roles::<FinanceReaders>(), json!({
            "operationId": "listStatementLines",
            "summary": "Imported credits in id order; `queued=true` for those waiting for finance (no code, several codes, an unknown code, or money the fine could not take). While a queued credit names a fine, the fine's clocks wait.",
            "parameters": [
                { "name": "queued", "in": "query", "required": false, "description": "Only the queued ones.", "schema": { "type": "boolean" } },
                { "name": "after", "in": "query", "required": false, "description": "The last id of the previous page.", "schema": { "type": "integer" } },
                { "name": "limit", "in": "query", "required": false, "description": "1 to 1000; default 100.", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
            ],
            "responses": {
                "200": json_of("One page.", "StatementLinePage"),
                "400": problem("Parameters not numbers (`bad_request`), or the limit out of range (`invalid_query`).")
            }
        }))},
        "/api/v1/statement-lines/{id}/resolution": { "post": secured(roles::<Finance>(), json!({
            "operationId": "resolveStatementLine",
            "summary": "Takes a queued credit off the queue: `apply` it to the fine with `payment_code` (matched where it is money a bank reported), or `dismiss` it (returned to the payer); `note` says why.",
            "parameters": [path_param("id", "The credit's id.", json!({ "type": "integer" }))],
            "requestBody": body_of("StatementLineResolution"),
            "responses": {
                "200": json_of("The credit, resolved.", "StatementLine"),
                "404": problem("No such credit (`not_found`); no resolution has the code (`unknown_payment_code`)."),
                "409": problem("Not queued (`conflict`); the fine cannot take the money (`already_paid`, `case_closed`, `not_payable`)."),
                "422": problem("Fields wrong (`validation_failed`).")
            }
        }))},
        "/api/v1/payment-totals": { "get": secured(roles::<FinanceReaders>(), json!({
            "operationId": "paymentTotals",
            "summary": "Per day of the jurisdiction's calendar: the standing payments of each channel (count, minor units; a statement's payment on its credit's booking day), those reported over SOAP or the API that no credit has matched yet, and the credits booked by what became of them; `balanced` when every day's credits are accounted for.",
            "parameters": [
                { "name": "from", "in": "query", "required": true, "schema": { "type": "string", "format": "date" } },
                { "name": "to", "in": "query", "required": true, "description": "At most 62 days after `from`, included.", "schema": { "type": "string", "format": "date" } }
            ],
            "responses": {
                "200": json_of("The days.", "PaymentTotals"),
                "400": problem("Dates missing or not dates (`bad_request`), `to` before `from` or too far (`invalid_query`).")
            }
        }))}
    })
}

/// The checks before issuing: the exemption list, the hot list and the alerts (a
/// function of its own, like `fines_paths`, for the `json!` macro's recursion limit).
fn checks_paths() -> Value {
    let numeric_id = |what: &str| {
        path_param(
            "id",
            &format!("The {what}'s id."),
            json!({ "type": "integer", "format": "int64" }),
        )
    };
    let plate = path_param(
        "plate",
        "The plate (spaces and hyphens dropped, upper-cased).",
        json!({ "type": "string" }),
    );
    let mut alert_params = vec![query_param(
        "open",
        "`true`: only alerts nobody has acknowledged.",
        json!({ "type": "boolean" }),
    )];
    alert_params.extend(paging_params());
    json!({
        "/api/v1/exemptions": {
            "get": secured(roles::<CaseReaders>(), json!({
                "operationId": "listExemptions",
                "summary": "The exemption list in force (plates and series not fined from a camera), in the order the entries were added.",
                "responses": { "200": json_of("The entries.", "ExemptionList") }
            })),
            "post": secured(roles::<ListKeepers>(), json!({
                "operationId": "addExemption",
                "summary": "Add a plate or a series (`*` any run, `?` one character) with its category, the note it rests on and its validity dates (both included). Audited.",
                "requestBody": body_of("ExemptionRequest"),
                "responses": {
                    "201": json_of("Added.", "Exemption"),
                    "400": problem("Body not JSON (`bad_request`)."),
                    "422": problem("Every problem with the fields at once (`validation_failed`).")
                }
            }))
        },
        "/api/v1/exemptions/{id}": { "delete": secured(roles::<ListKeepers>(), json!({
            "operationId": "removeExemption",
            "summary": "End an entry's force: it exempts no case checked from now on; the entry is kept with who removed it and when. Audited.",
            "parameters": [numeric_id("exemption")],
            "responses": {
                "200": json_of("Removed.", "Exemption"),
                "400": problem("Id not a number (`bad_request`)."),
                "404": problem("No entry in force with this id (`not_found`).")
            }
        }))},
        "/api/v1/hot-list": {
            "get": secured(roles::<CaseReaders>(), json!({
                "operationId": "listHotList",
                "summary": "The plates on the hot list (stolen, wanted), in the order they were listed.",
                "responses": { "200": json_of("The entries.", "HotListList") }
            })),
            "post": secured(roles::<ListKeepers>(), json!({
                "operationId": "addHotListEntry",
                "summary": "Put a plate on the hot list: a case of it raises an alert (the fine is not stopped). Audited.",
                "requestBody": body_of("HotListRequest"),
                "responses": {
                    "201": json_of("Listed.", "HotListEntry"),
                    "400": problem("Body not JSON (`bad_request`)."),
                    "409": problem("The plate is listed already (`conflict`)."),
                    "422": problem("Every problem with the fields at once (`validation_failed`).")
                }
            }))
        },
        "/api/v1/hot-list/{plate}": { "delete": secured(roles::<ListKeepers>(), json!({
            "operationId": "removeHotListEntry",
            "summary": "Take a plate off the hot list; the entry is kept with who removed it and when. Audited.",
            "parameters": [plate],
            "responses": {
                "200": json_of("Removed.", "HotListEntry"),
                "400": problem("Not a plate (`bad_request`)."),
                "404": problem("The plate is not listed (`not_found`).")
            }
        }))},
        "/api/v1/alerts": { "get": secured(roles::<CaseReaders>(), json!({
            "operationId": "listAlerts",
            "summary": "Alerts the checks raised (a plate on the hot list), by ascending id.",
            "parameters": alert_params,
            "responses": {
                "200": json_of("One page.", "AlertPage"),
                "400": problem("Bad parameters (`invalid_query`).")
            }
        }))},
        "/api/v1/alerts/{id}/acknowledge": { "post": secured(roles::<Supervisors>(), json!({
            "operationId": "acknowledgeAlert",
            "summary": "Record that a supervisor has seen to an alert. Audited.",
            "parameters": [numeric_id("alert")],
            "responses": {
                "200": json_of("Acknowledged.", "Alert"),
                "400": problem("Id not a number (`bad_request`)."),
                "404": problem("No such alert (`not_found`)."),
                "409": problem("Acknowledged already (`conflict`).")
            }
        }))}
    })
}

/// The schemas of the checks' routes.
fn resolution_number_param() -> Value {
    path_param(
        "number",
        "The resolution's number, e.g. KG-BSK-2026-0000001.",
        json!({ "type": "string" }),
    )
}

/// Owner liability (KZ art. 31): the owner's statement against a resolution.
fn owner_liability_paths() -> Value {
    json!({
        "/api/v1/resolutions/{number}/nominations": {
            "get": secured(roles::<CaseReaders>(), json!({
                "operationId": "getNomination",
                "summary": "The owner's statement against the resolution: the driver they named (and the case re-issued to them) or the theft they reported.",
                "parameters": [resolution_number_param()],
                "responses": {
                    "200": json_of("The statement.", "Nomination"),
                    "400": problem("Not a resolution number (`bad_request`)."),
                    "404": problem("No such resolution, or no statement against it (`not_found`).")
                }
            })),
            "post": secured(roles::<DeskOfficers>(), json!({
                "operationId": "recordNomination",
                "summary": "Take the owner's statement against an open resolution (issued, delivered, partially paid, overdue, paid) within the appeal period: `driver` annuls it and re-issues the offence to the named driver (a new case and, once the issuing stage runs, a new resolution number, priced with the driver's repeats); `stolen` annuls it and puts the plate on the hot list. A paid resolution's money is queued for refund. One statement per resolution. Audited.",
                "parameters": [resolution_number_param()],
                "requestBody": body_of("NominationRequest"),
                "responses": {
                    "201": json_of("Recorded.", "Nomination"),
                    "400": problem("Not a resolution number, or body not JSON (`bad_request`)."),
                    "404": problem("No such resolution (`not_found`)."),
                    "409": problem("A statement was recorded already, the case is in a state that takes none (appealed, closed, gone to enforcement), or the appeal period closed (`conflict`)."),
                    "422": problem("Unknown kind, a driver without PIN (12–14 digits) or name, a theft without police report or with a report time in the future, no statement (`validation_failed`).")
                }
            }))
        }
    })
}

fn officer_filings_paths() -> Value {
    let accident_id = path_param(
        "id",
        "The accident's id.",
        json!({ "type": "integer", "format": "int64" }),
    );
    json!({
        "/api/v1/officer-violations": { "post": secured(roles::<DeskOfficers>(), json!({
            "operationId": "fileOfficerViolation",
            "summary": "File a violation the calling officer saw himself, with JPEG photos (embedded unchanged in the resolution). It becomes a case with no camera in `approved` (the officer is the witness: no reading, no review), which the fines worker takes to the owner lookup and issuing; its resolution names the officer from the officers' register (the caller needs an entry) and, for speeding, the speed gun. A retry with the same `report_id` returns the same case. Audited.",
            "requestBody": body_of("OfficerViolationRequest"),
            "responses": {
                "201": json_of("Filed.", "OfficerViolationFiled"),
                "200": json_of("Filed before under this report id; nothing new.", "OfficerViolationFiled"),
                "400": problem("Body not JSON (`bad_request`)."),
                "409": problem("The report id names another report, or the accident is closed (`conflict`)."),
                "422": problem("Bad plate, kind, time, place, measurement, photos (JPEG, 1 to 10) or unknown accident (`validation_failed`).")
            }
        }))},
        "/api/v1/accidents": {
            "get": secured(roles::<CaseReaders>(), json!({
                "operationId": "listAccidents",
                "summary": "Road accidents in id order, optionally in one state.",
                "parameters": [
                    query_param("state", "registered, under_investigation or closed.", json!({ "type": "string", "enum": ["registered", "under_investigation", "closed"] })),
                    query_param("after", "The last id of the previous page.", json!({ "type": "integer" })),
                    query_param("limit", "1 to 1000, default 100.", json!({ "type": "integer", "minimum": 1, "maximum": 1000 }))
                ],
                "responses": {
                    "200": json_of("A page.", "AccidentPage"),
                    "400": problem("Bad state or limit (`invalid_query`).")
                }
            })),
            "post": secured(roles::<DeskOfficers>(), json!({
                "operationId": "registerAccident",
                "summary": "Register a road accident: place, time, description, vehicles, participants (a driver names his vehicle), JPEG photos and the scheme (JPEG, PNG or PDF). It starts `registered`. A retry with the same `report_id` returns the same accident. Audited.",
                "requestBody": body_of("AccidentRequest"),
                "responses": {
                    "201": json_of("Registered.", "Accident"),
                    "200": json_of("Registered before under this report id; nothing new.", "Accident"),
                    "400": problem("Body not JSON (`bad_request`)."),
                    "422": problem("Missing or bad fields (`validation_failed`).")
                }
            }))
        },
        "/api/v1/accidents/{id}": { "get": secured(roles::<CaseReaders>(), json!({
            "operationId": "getAccident",
            "summary": "An accident with its vehicles, participants, files, the violations filed under it and every move.",
            "parameters": [accident_id.clone()],
            "responses": {
                "200": json_of("The accident.", "Accident"),
                "400": problem("Id not a number (`bad_request`)."),
                "404": problem("No such accident (`not_found`).")
            }
        }))},
        "/api/v1/accidents/{id}/files/{n}": { "get": secured(roles::<CaseReaders>(), json!({
            "operationId": "getAccidentFile",
            "summary": "A photo or the scheme, with its type, re-verified against its SHA-256.",
            "parameters": [accident_id.clone(), path_param("n", "The file's position, from 0.", json!({ "type": "integer", "minimum": 0 }))],
            "responses": {
                "200": { "description": "The file.", "content": { "*/*": { "schema": { "type": "string" } } } },
                "400": problem("Id or position not a number (`bad_request`)."),
                "404": problem("No such accident or file (`not_found`)."),
                "410": problem("The accident's photos and scheme were destroyed at the end of its archive period (`evidence_destroyed`)."),
                "500": problem("The stored bytes no longer match their hash (`evidence_corrupt`).")
            }
        }))},
        "/api/v1/accidents/{id}/moves": { "post": secured(roles::<DeskOfficers>(), json!({
            "operationId": "moveAccident",
            "summary": "Move the investigation on: registered → under_investigation → closed (with an outcome: violations_filed needs a violation filed under it, no_violation none, and serious or fatal injuries need referred_to_court). A compare-and-set on `from` (default: the state read), audited.",
            "parameters": [accident_id],
            "requestBody": body_of("AccidentMoveRequest"),
            "responses": {
                "200": json_of("Moved.", "Accident"),
                "400": problem("Id not a number, or body not JSON (`bad_request`)."),
                "404": problem("No such accident (`not_found`)."),
                "409": problem("Not the next state, an outcome the rules refuse, or the accident moved on meanwhile (`conflict`)."),
                "422": problem("Unknown state or outcome (`validation_failed`).")
            }
        }))}
    })
}

fn officer_filings_schemas(schemas: &mut serde_json::Map<String, Value>) {
    let text = json!({ "type": "string" });
    let nullable_text = json!({ "type": ["string", "null"] });
    let instant = json!({ "type": "string", "format": "date-time" });
    let id = json!({ "type": "integer", "format": "int64" });
    let uuid = json!({ "type": "string", "format": "uuid" });
    let micro = json!({ "type": ["integer", "null"], "description": "Micro-degrees (WGS 84); both or neither." });
    let place = json!({ "type": "object", "required": ["address"], "properties": {
        "address": text, "lat_e6": micro, "lon_e6": micro } });
    let upload = |types: Vec<&str>| {
        json!({
            "type": "object", "required": ["name", "content_type", "data"],
            "properties": {
                "name": { "type": "string" },
                "content_type": { "type": "string", "enum": types },
                "data": { "type": "string", "contentEncoding": "base64" }
            }
        })
    };
    let states = json!({ "type": "string", "enum": kozomol_store::AccidentState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>() });
    let outcomes = json!({ "type": ["string", "null"], "enum": kozomol_store::AccidentOutcome::ALL.iter().map(|s| Some(s.as_str())).chain([None]).collect::<Vec<_>>() });
    schemas.insert("OfficerViolationRequest".into(), json!({
        "type": "object", "required": ["plate", "kind", "occurred_at", "place", "photos"],
        "properties": {
            "report_id": uuid,
            "plate": text,
            "kind": { "type": "string", "enum": kozomol_core::ViolationKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>() },
            "occurred_at": instant,
            "place": place,
            "speed_kmh": { "type": "integer", "description": "Speeding only, with limit_kmh." },
            "limit_kmh": { "type": "integer" },
            "device": {
                "type": "object", "required": ["serial", "certificate"],
                "description": "The speed gun the speed was measured with: speeding only, and required for it. Its certificate must cover the offence's day, or the case is set aside at issuing.",
                "properties": {
                    "serial": { "type": "string", "minLength": 1, "maxLength": 64 },
                    "certificate": { "$ref": "#/components/schemas/Certificate" }
                }
            },
            "notes": text,
            "accident_id": id,
            "photos": { "type": "array", "minItems": 1, "maxItems": 10, "items": upload(vec!["image/jpeg"]) },
            "plate_photo": upload(vec!["image/jpeg"])
        }
    }));
    schemas.insert(
        "OfficerViolationFiled".into(),
        json!({
            "type": "object", "required": ["case_id", "state", "created", "case_href"],
            "properties": { "case_id": id, "state": { "$ref": "#/components/schemas/CaseState" },
                            "created": { "type": "boolean" }, "case_href": text }
        }),
    );
    schemas.insert("AccidentRequest".into(), json!({
        "type": "object", "required": ["occurred_at", "place", "description", "vehicles", "participants"],
        "properties": {
            "report_id": uuid, "occurred_at": instant, "place": place, "description": text,
            "vehicles": { "type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["plate", "damage"],
                "properties": { "plate": text, "make": text, "model": text, "damage": text } } },
            "participants": { "type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["name", "role"],
                "properties": {
                    "name": text,
                    "role": { "type": "string", "enum": ["driver", "passenger", "pedestrian", "witness"] },
                    "vehicle": { "type": "integer", "minimum": 0, "description": "Index into vehicles." },
                    "pin": { "type": "string", "pattern": "^([0-9]{12}|[0-9]{14})$" },
                    "injuries": { "type": "string", "enum": ["none", "light", "serious", "fatal"] }
                } } },
            "photos": { "type": "array", "items": upload(vec!["image/jpeg"]) },
            "scheme": upload(vec!["image/jpeg", "image/png", "application/pdf"])
        }
    }));
    schemas.insert(
        "AccidentMoveRequest".into(),
        json!({
            "type": "object", "required": ["to"],
            "properties": { "from": states, "to": states, "outcome": outcomes, "note": text }
        }),
    );
    schemas.insert("AccidentSummary".into(), json!({
        "type": "object",
        "required": ["id", "occurred_at", "address", "state", "outcome", "registered_by", "registered_at"],
        "properties": { "id": id, "occurred_at": instant, "address": text, "state": states,
                        "outcome": outcomes, "registered_by": text, "registered_at": instant }
    }));
    schemas.insert("AccidentPage".into(), json!({
        "type": "object", "required": ["items"],
        "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/AccidentSummary" } },
                        "next": { "type": ["integer", "null"] } }
    }));
    schemas.insert("Accident".into(), json!({
        "type": "object",
        "required": ["id", "report_id", "occurred_at", "place", "description", "state", "outcome",
                     "registered_by", "registered_at", "vehicles", "participants", "files",
                     "cases", "moves", "evidence_destroyed_at", "file_urls", "case_hrefs"],
        "properties": {
            "id": id, "report_id": uuid, "occurred_at": instant, "place": place,
            "description": text, "state": states, "outcome": outcomes,
            "registered_by": text, "registered_at": instant,
            "vehicles": { "type": "array", "items": { "type": "object" } },
            "participants": { "type": "array", "items": { "type": "object" } },
            "files": { "type": "array", "items": { "type": "object" } },
            "cases": { "type": "array", "items": id },
            "moves": { "type": "array", "items": { "type": "object", "properties": {
                "id": id, "from_state": nullable_text, "to_state": text, "outcome": nullable_text,
                "actor": text, "note": nullable_text, "at": instant } } },
            "evidence_destroyed_at": { "type": ["string", "null"], "format": "date-time", "description": "When the accident's photos and scheme were destroyed at the end of its archive period; its files answer 410 since." },
            "file_urls": { "type": "array", "items": { "type": "object" } },
            "case_hrefs": { "type": "array", "items": text }
        }
    }));
}

fn owner_liability_schemas(schemas: &mut serde_json::Map<String, Value>) {
    let text = json!({ "type": "string" });
    let nullable_text = json!({ "type": ["string", "null"] });
    let instant = json!({ "type": "string", "format": "date-time" });
    let id = json!({ "type": "integer", "format": "int64" });
    let driver = json!({
        "type": "object", "required": ["pin", "name"],
        "properties": {
            "pin": { "type": "string", "pattern": "^[0-9]{12,14}$", "description": "PIN (KG) or IIN (KZ)." },
            "name": text, "address": nullable_text
        }
    });
    schemas.insert("NominationRequest".into(), json!({
        "type": "object", "required": ["kind", "statement"],
        "properties": {
            "kind": { "type": "string", "enum": ["driver", "stolen"] },
            "driver": driver,
            "police_report": { "type": "string", "description": "The police report's number (stolen)." },
            "reported_at": { "type": "string", "format": "date-time", "description": "When the theft was reported to the police (stolen)." },
            "statement": { "type": "string", "description": "The owner's statement as taken down." }
        }
    }));
    schemas.insert("Nomination".into(), json!({
        "type": "object",
        "required": ["id", "case_id", "resolution_number", "kind", "statement", "from_state", "recorded_by", "recorded_at", "case_href"],
        "properties": {
            "id": id, "case_id": id, "resolution_number": text,
            "kind": { "type": "string", "enum": ["driver", "stolen"] },
            "driver": driver,
            "police_report": text, "reported_at": instant,
            "statement": text,
            "from_state": { "type": "string", "description": "The state the statement found the case in." },
            "reissued_case_id": { "type": ["integer", "null"], "format": "int64", "description": "The case re-issued to the named driver." },
            "recorded_by": text, "recorded_at": instant,
            "refund_request": { "type": "integer", "format": "int64", "description": "The refund request queued (paid resolutions, on recording only)." },
            "hot_list_entry": { "type": "integer", "format": "int64", "description": "The hot-list entry a theft added (on recording only)." },
            "case_href": text,
            "reissued_case_href": text
        }
    }));
}

fn checks_schemas(schemas: &mut serde_json::Map<String, Value>) {
    let text = json!({ "type": "string" });
    let nullable_text = json!({ "type": ["string", "null"] });
    let instant = json!({ "type": "string", "format": "date-time" });
    let nullable_instant = json!({ "type": ["string", "null"], "format": "date-time" });
    let nullable_date = json!({ "type": ["string", "null"], "format": "date" });
    let id = json!({ "type": "integer", "format": "int64" });
    let categories =
        json!({ "type": "string", "enum": kozomol_store::checks::EXEMPTION_CATEGORIES });
    let reasons = json!({ "type": "string", "enum": kozomol_store::checks::HOT_LIST_REASONS });
    let list_of = |schema: &str| {
        json!({ "type": "object", "required": ["items"], "properties": {
            "items": { "type": "array", "items": { "$ref": format!("#/components/schemas/{schema}") } } } })
    };
    schemas.insert("ExemptionRequest".into(), json!({
        "type": "object", "required": ["pattern", "category", "note"],
        "properties": {
            "pattern": { "type": "string", "description": "An exact plate or a series: `*` any run of characters, `?` one; letters, digits, `*`, `?`, at most 16, at least one letter or digit." },
            "category": categories,
            "note": { "type": "string", "minLength": 1, "maxLength": 2000, "description": "What the entry rests on (a decree, a letter)." },
            "valid_from": { "type": "string", "format": "date" },
            "valid_until": { "type": "string", "format": "date" }
        }
    }));
    schemas.insert(
        "Exemption".into(),
        json!({
            "type": "object",
            "properties": {
                "id": id, "pattern": text, "category": categories, "note": text,
                "valid_from": nullable_date, "valid_until": nullable_date,
                "added_by": text, "added_at": instant,
                "removed_at": nullable_instant, "removed_by": nullable_text
            }
        }),
    );
    schemas.insert("ExemptionList".into(), list_of("Exemption"));
    schemas.insert("HotListRequest".into(), json!({
        "type": "object", "required": ["plate", "reason"],
        "properties": {
            "plate": { "type": "string", "description": "2-12 letters and digits; spaces and hyphens are dropped." },
            "reason": reasons,
            "note": { "type": "string", "maxLength": 2000 }
        }
    }));
    schemas.insert(
        "HotListEntry".into(),
        json!({
            "type": "object",
            "properties": {
                "id": id, "plate": text, "reason": reasons, "note": text,
                "listed_at": instant, "listed_by": text,
                "removed_at": nullable_instant, "removed_by": nullable_text
            }
        }),
    );
    schemas.insert("HotListList".into(), list_of("HotListEntry"));
    schemas.insert("Alert".into(), json!({
        "type": "object",
        "properties": {
            "id": id, "case_id": id,
            "kind": { "type": "string", "enum": ["hot_list"] },
            "detail": { "type": "object", "description": "For `hot_list`: plate, reason, note, listed_at, site_id, captured_at and the checks' reason." },
            "raised_at": instant,
            "acknowledged_by": nullable_text, "acknowledged_at": nullable_instant,
            "case_href": text
        }
    }));
    schemas.insert(
        "AlertPage".into(),
        json!({
            "type": "object", "required": ["items", "next"],
            "properties": {
                "items": { "type": "array", "items": { "$ref": "#/components/schemas/Alert" } },
                "next": nullable_text
            }
        }),
    );
}

/// Logging in through the city's identity provider (`[oidc]`, docs/web.md).
fn oidc_paths() -> Value {
    json!({
        "/console/oidc/login": { "get": {
            "operationId": "oidcLogin",
            "summary": "Off to the city's identity provider (OpenID Connect, authorization code with PKCE S256); sets the flow's cookie.",
            "security": [],
            "responses": {
                "303": { "description": "To the provider's authorization endpoint; to `/console/login?failed=oidc` when it cannot be reached." },
                "404": problem("No identity provider is configured (`not_found`).")
            }
        } },
        "/console/oidc/callback": { "get": {
            "operationId": "oidcCallback",
            "summary": "Back from the identity provider: the code is exchanged, the ID token checked (signature from the provider's JWKS, issuer, audience, expiry, nonce) and a session opened for kozomol's account of the login the token names.",
            "security": [],
            "parameters": [
                query_param("code", "The authorization code.", json!({ "type": "string" })),
                query_param("state", "The flow's state, as sent.", json!({ "type": "string" })),
                query_param("error", "The provider's refusal.", json!({ "type": "string" })),
                query_param("error_description", "Its explanation.", json!({ "type": "string" }))
            ],
            "responses": {
                "200": { "description": "Logged in: the session cookie, and a page moving on to the dashboard.", "content": { "text/html": { "schema": { "type": "string" } } } },
                "303": { "description": "Not logged in: to `/console/login?failed=oidc` (why is logged)." },
                "404": problem("No identity provider is configured (`not_found`).")
            }
        } }
    })
}

/// An HTML page (or a file under `/assets/`) rather than JSON.
fn page(operation_id: &str, summary: &str, security: Value, extra: Value) -> Value {
    let mut op = json!({
        "operationId": operation_id,
        "summary": summary,
        "security": security,
        "parameters": [query_param("lang", "The page's language (`ky`, `ru`, `en`); else the `lang` cookie, else Accept-Language.", json!({ "type": "string" }))],
        "responses": {
            "200": { "description": "The page.", "content": { "text/html": { "schema": { "type": "string" } } } }
        }
    });
    if let (Some(op), Some(extra)) = (op.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            op.insert(key.clone(), value.clone());
        }
    }
    op
}

/// What a console page answers: the page, the login page without a session, a refusal
/// for a role it is not for.
fn console_page_answers() -> Value {
    json!({
        "200": { "description": "The page.", "content": { "text/html": { "schema": { "type": "string" } } } },
        "303": { "description": "No session: to the login page." },
        "403": { "description": "A role that may not use the page.", "content": { "text/html": { "schema": { "type": "string" } } } }
    })
}

/// The console's sessions, the citizens' portal, the pages, and the bus's SOAP endpoint.
fn web_paths() -> Value {
    let number = path_param(
        "number",
        "The resolution's number, e.g. `KG-BSK-2026-0000001`.",
        json!({ "type": "string" }),
    );
    let grant = json!({ "name": "grant", "in": "query", "required": true,
        "description": "The grant a lookup handed out with this fine.", "schema": { "type": "string" } });
    let no_grant = problem(
        "No grant, or one not for this fine or expired (`grant_required`); look the fine up again.",
    );
    // Apart: one `json!` of every path would pass the macro recursion limit.
    let confirm_contact = json!({ "post": {
        "operationId": "confirmPublicContact",
        "summary": "The code sent to the contact: the right one stores the contact for this vehicle's notices; 5 tries per code.",
        "security": [],
        "parameters": [number.clone(), path_param("handle", "The request's handle (`handle` of the 202).", json!({ "type": "string" })), grant.clone()],
        "requestBody": body_of("ContactCode"),
        "responses": {
            "201": json_of("Confirmed and added.", "ContactResult"),
            "200": json_of("Confirmed; the contact was known already.", "ContactResult"),
            "400": problem("Body not JSON (`bad_request`)."),
            "403": no_grant.clone(),
            "404": problem("No such resolution, or no such request for it (`not_found`)."),
            "409": problem("The code expired, was used, or was mistyped 5 times: ask for a new one (`conflict`)."),
            "422": problem("Not six digits, or the wrong code; the detail says how many tries are left (`validation_failed`)."),
            "429": problem("Too many requests from this address; see Retry-After (`too_many_lookups`).")
        }
    }});
    let mut paths = json!({
        "/api/v1/auth/session": {
            "post": {
                "operationId": "openSession",
                "summary": "Log in to the console: sets the HttpOnly session cookie and answers the session's anti-forgery token. At most 5 failures per login per minute.",
                "security": [],
                "requestBody": body_of("LoginRequest"),
                "responses": {
                    "200": json_of("Logged in; `Set-Cookie: kozomol_session=...`.", "Session"),
                    "400": problem("Not JSON (`bad_request`)."),
                    "401": problem("Login or password wrong (`invalid_credentials`)."),
                    "422": problem("Fields missing (`validation_failed`)."),
                    "429": problem("Too many failures for this login; see Retry-After (`too_many_attempts`).")
                }
            },
            "get": {
                "operationId": "showSession",
                "summary": "Who this session is, with its anti-forgery token.",
                "security": [{ "session": [] }],
                "responses": {
                    "200": json_of("The session.", "Session"),
                    "401": problem("No session, or an ended one (`unauthenticated`).")
                }
            },
            "delete": {
                "operationId": "closeSession",
                "summary": "Log out: the session ends and its cookie is cleared. A live session needs `X-CSRF-Token`; an ended one only has its cookie cleared.",
                "security": [{ "session": [] }],
                "responses": {
                    "204": { "description": "Logged out, or an ended session's cookie cleared." },
                    "401": problem("No session cookie (`unauthenticated`)."),
                    "403": problem("No or a wrong `X-CSRF-Token` (`csrf_rejected`).")
                }
            }
        },
        "/api/v1/public/lookups": { "post": {
            "operationId": "lookUpFines",
            "summary": "The citizens' portal: find fines by plate and vehicle registration certificate, by resolution number, or by payment code. No account; at most 30 lookups per address in 10 minutes.",
            "security": [],
            "requestBody": body_of("LookupRequest"),
            "responses": {
                "200": json_of("The fines found, each with a grant for its other routes.", "LookupAnswer"),
                "400": problem("Not JSON (`bad_request`)."),
                "404": problem("Nothing matches (`not_found`)."),
                "422": problem("Neither plate with certificate, nor a number, nor a code (`validation_failed`)."),
                "429": problem("Too many lookups from this address; see Retry-After (`too_many_lookups`).")
            }
        }},
        "/api/v1/public/fines/{number}": { "get": {
            "operationId": "showPublicFine",
            "summary": "The fine as it stands now, as its payer sees it.",
            "security": [],
            "parameters": [number.clone(), grant.clone()],
            "responses": {
                "200": json_of("The fine.", "PublicFine"),
                "403": no_grant.clone(),
                "404": problem("No such resolution (`not_found`).")
            }
        }},
        "/api/v1/public/fines/{number}/frames/{n}": { "get": {
            "operationId": "publicFinePhoto",
            "summary": "A photo of the violation, as the camera signed it.",
            "security": [],
            "parameters": [number.clone(), path_param("n", "The frame's index, from 0.", json!({ "type": "string" })), grant.clone()],
            "responses": {
                "200": { "description": "The JPEG.", "content": { "image/jpeg": { "schema": { "type": "string", "format": "binary" } } } },
                "403": no_grant.clone(),
                "404": problem("No such photo (`not_found`).")
            }
        }},
        "/api/v1/public/fines/{number}/pdf": { "get": {
            "operationId": "publicFinePdf",
            "summary": "The signed resolution, byte for byte as issued.",
            "security": [],
            "parameters": [number.clone(), grant.clone()],
            "responses": {
                "200": { "description": "The PDF.", "content": { "application/pdf": { "schema": { "type": "string", "format": "binary" } } } },
                "403": no_grant.clone(),
                "404": problem("No such resolution (`not_found`).")
            }
        }},
        "/api/v1/public/fines/{number}/qr.svg": { "get": {
            "operationId": "publicFineQr",
            "summary": "The payment QR for what is due today, as SVG.",
            "security": [],
            "parameters": [number.clone(), grant.clone()],
            "responses": {
                "200": { "description": "The QR.", "content": { "image/svg+xml": { "schema": { "type": "string" } } } },
                "403": no_grant.clone(),
                "404": problem("No such resolution, or nothing due (`not_found`).")
            }
        }},
        "/api/v1/public/fines/{number}/contacts": { "post": {
            "operationId": "leavePublicContact",
            "summary": "The owner asks for notices of this vehicle's resolutions (this one if not yet delivered, and every later one) at a phone number (E.164) or e-mail address: a six-digit code goes there, valid 15 minutes; the contact is stored only when it comes back (`confirm_url`). Only with a grant from a lookup by plate and registration certificate; counted against the caller's address as lookups are.",
            "security": [],
            "parameters": [number.clone(), grant.clone()],
            "requestBody": body_of("ContactRequest"),
            "responses": {
                "202": json_of("The code was sent.", "ContactConfirmationRequested"),
                "400": problem("Body not JSON (`bad_request`)."),
                "403": problem("No grant, or one from a lookup by number or payment code (`grant_required`)."),
                "404": problem("No such resolution (`not_found`)."),
                "409": problem("The resolution names no owner (`conflict`)."),
                "422": problem("Unknown channel, one this server sends nothing by, or an address that channel cannot use or refused (`validation_failed`)."),
                "429": problem("Too many requests from this address, see Retry-After (`too_many_lookups`); or the address was sent 3 codes in the last hour (`too_many_codes`)."),
                "503": problem("The channel did not take the code; try again later (`code_not_sent`).")
            }
        }},
        "/api/v1/public/fines/{number}/appeals": { "post": {
            "operationId": "filePublicAppeal",
            "summary": "The citizen's own appeal against the resolution, filed by `portal`.",
            "security": [],
            "parameters": [number, grant],
            "requestBody": body_of("AppealRequest"),
            "responses": {
                "201": json_of("Filed.", "PublicAppeal"),
                "400": problem("Body not JSON (`bad_request`)."),
                "403": no_grant,
                "404": problem("No such resolution (`not_found`)."),
                "409": problem("A state that takes no appeal, an appeal already open, or the window closed (`conflict`)."),
                "413": { "description": "The body is larger than ten attachments." },
                "422": problem("Missing appellant or grounds, a file of the wrong type, size or content (`validation_failed`).")
            }
        }},
        "/api/v1/open-data/violations": { "get": {
            "operationId": "openDataViolations",
            "summary": "Open data: violations recorded and fines issued per local day, hour, camera site and kind; no plate or personal data. At most 92 days a request.",
            "security": [],
            "parameters": [
                query_param("from", "First day, YYYY-MM-DD (default: six days before `to`).", json!({ "type": "string", "format": "date" })),
                query_param("to", "Last day, inclusive (default: today).", json!({ "type": "string", "format": "date" })),
                query_param("format", "`json` (default) or `csv`.", json!({ "type": "string", "enum": ["json", "csv"] }))
            ],
            "responses": {
                "200": { "description": "The counts.", "content": {
                    "application/json": { "schema": { "$ref": "#/components/schemas/OpenData" } },
                    "text/csv": { "schema": { "type": "string" } }
                } },
                "400": problem("A day not as YYYY-MM-DD, `from` after `to`, a range over 92 days, or another format (`invalid_query`).")
            }
        }},
        "/api/v1/dashboard": { "get": secured(roles::<AnyStaff>(), json!({
            "operationId": "dashboard",
            "summary": "The console's dashboard: violations per local day, hour, site and kind; the review backlog now; decisions by tier, the share made automatically and the mean time to a decision; resolutions issued, money kept and the collection rate. At most 92 days.",
            "parameters": [
                query_param("from", "First day, YYYY-MM-DD (default: six days before `to`).", json!({ "type": "string", "format": "date" })),
                query_param("to", "Last day, inclusive (default: today).", json!({ "type": "string", "format": "date" }))
            ],
            "responses": {
                "200": { "description": "The figures.", "content": { "application/json": { "schema": { "type": "object" } } } },
                "400": problem("A day not as YYYY-MM-DD, `from` after `to`, or a range over 92 days (`invalid_query`).")
            }
        }))},
        "/console/dashboard": { "get": page("dashboardPage", "The dashboard's charts.", json!([{ "session": [] }]), json!({
            "x-kozomol-roles": roles::<AnyStaff>(),
            "responses": console_page_answers()
        })) },
        "/open-data": { "get": page("openDataPage", "The open-data page: totals per site and kind, downloads.", json!([]), json!({})) },
        "/": { "get": page("portalPage", "The citizens' portal.", json!([]), json!({})) },
        "/v/{number}": { "get": page("printedLinkPage", "The portal with the fine a resolution's printed link names looked up.", json!([]),
            json!({ "parameters": [path_param("number", "The resolution's number.", json!({ "type": "string" })),
                query_param("lang", "The page's language.", json!({ "type": "string" }))] })) },
        "/console": { "get": {
            "operationId": "consolePage",
            "summary": "The console's start: redirects to the review desk.",
            "security": [],
            "responses": { "303": { "description": "To `/console/queue`." } }
        }},
        "/console/login": { "get": page("consoleLoginPage", "The console's login: login and password, and the city's identity provider where `[oidc]` names one.", json!([]), json!({})) },
        "/console/queue": { "get": page("reviewDeskPage", "The review desk, worked from the keyboard.", json!([{ "session": [] }]), json!({
            "x-kozomol-roles": roles::<Reviewers>(),
            "responses": console_page_answers()
        })) },
        "/console/cameras": { "get": page("camerasPage", "Camera health: online, last seen, clock offset, outbox depth, certificates.", json!([{ "session": [] }]), json!({
            "x-kozomol-roles": roles::<AnyStaff>(),
            "responses": console_page_answers()
        })) },
        "/console/dead-letters": { "get": page("deadLettersPage", "Messages refused at the door, with why.", json!([{ "session": [] }]), json!({
            "x-kozomol-roles": roles::<DeadLetterReaders>(),
            "responses": console_page_answers()
        })) },
        "/console/finance": { "get": page("financePage", "Statements imported, credits waiting for a decision, reconciliation totals per day and channel, refunds owed.", json!([{ "session": [] }]), json!({
            "x-kozomol-roles": roles::<FinanceReaders>(),
            "responses": console_page_answers()
        })) },
        "/console/reports": { "get": page("reportsPage", "Violations officers saw themselves, and road accidents through their investigation.", json!([{ "session": [] }]), json!({
            "x-kozomol-roles": roles::<DeskOfficers>(),
            "responses": console_page_answers()
        })) },
        "/console/accounts": { "get": page("accountsPage", "The accounts; admins make new ones.", json!([{ "session": [] }]), json!({
            "x-kozomol-roles": roles::<AccountReaders>(),
            "responses": console_page_answers()
        })) },
        "/assets/{file}": { "get": {
            "operationId": "asset",
            "summary": "The pages' scripts, style sheet and translations (`i18n/{lang}.ftl`).",
            "security": [],
            "parameters": [path_param("file", "The file's name, e.g. `portal.js` or `i18n/ky.ftl`.", json!({ "type": "string" }))],
            "responses": {
                "200": { "description": "The file.", "content": { "text/plain": { "schema": { "type": "string" } } } },
                "404": { "description": "No such file." }
            }
        }},
        "/xroad/soap": { "post": {
            "operationId": "smartcityService",
            "summary": "Tunduk's `smartcity-service` (SOAP 1.1 over X-Road; its WSDL is the contract, docs/payments.md), for the security server's address and the X-Road clients configured.",
            "security": [],
            "requestBody": { "required": true, "content": { "text/xml": { "schema": { "type": "string" } } } },
            "responses": {
                "200": { "description": "The SOAP answer.", "content": { "text/xml": { "schema": { "type": "string" } } } },
                "403": { "description": "Not from the security server (a SOAP fault, `Client.AccessDenied`)." },
                "413": { "description": "Larger than 64 KiB (a SOAP fault)." },
                "500": { "description": "A SOAP fault.", "content": { "text/xml": { "schema": { "type": "string" } } } },
                "503": { "description": "This kozomol provides no smartcity-service (a SOAP fault)." }
            }
        }}
    });
    paths["/api/v1/public/fines/{number}/contacts/{handle}"] = confirm_contact;
    paths
}

/// `a` with `b`'s entries added.
fn merged(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn components() -> Value {
    let text = json!({ "type": "string" });
    let nullable_text = json!({ "type": ["string", "null"] });
    let instant = json!({ "type": "string", "format": "date-time" });
    let date = json!({ "type": "string", "format": "date" });
    let hex32 = json!({ "type": "string", "pattern": "^[0-9a-f]{64}$" });
    let security_schemes = json!({
        "securitySchemes": {
            "bearer": { "type": "http", "scheme": "bearer",
                        "description": "A token from POST /api/v1/auth/token (32 random bytes, base64url)." },
            "session": { "type": "apiKey", "in": "cookie", "name": "kozomol_session",
                        "description": "A console session from POST /api/v1/auth/session: authenticates every route a token does, for the same roles; a change (not GET, HEAD, OPTIONS) also needs the session's `X-CSRF-Token`, else 403 `csrf_rejected`." },
            "providerSignature": { "type": "apiKey", "in": "header", "name": "Kozomol-Signature",
                        "description": "`t=<unix seconds>,v1=<hex>`: HMAC-SHA256 with a secret shared with the provider over `{t}.{body}` for a callback, and over `{t}.{METHOD} {path?query}\\n{Idempotency-Key or empty}\\n{body}` for a request; several `v1` during a key rotation; `t` within 300 s of now." }
        }
    });
    let mut schemas = serde_json::Map::new();
    schemas.insert(
        "Problem".into(),
        json!({
            "type": "object",
            "required": ["type", "title", "status", "detail", "code"],
            "properties": {
                "type": text, "title": text, "status": { "type": "integer" }, "detail": text,
                "code": { "type": "string", "enum": crate::api::PROBLEM_CODES },
                "errors": { "type": "array", "items": {
                    "type": "object", "required": ["field", "message"],
                    "properties": { "field": text, "message": text } } }
            }
        }),
    );
    schemas.insert(
        "Status".into(),
        json!({ "type": "object", "properties": { "status": text } }),
    );
    schemas.insert("Role".into(), json!({ "type": "string", "enum": ["reviewer", "supervisor", "finance", "admin", "auditor"] }));
    schemas.insert("CaseState".into(), json!({ "type": "string", "enum": kozomol_core::CaseState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>() }));
    let enum_of = |names: Vec<&str>| json!({ "type": "string", "enum": names });
    schemas.insert("ReviewRequest".into(), json!({
                "type": "object", "required": ["decision"],
                "properties": {
                    "decision": enum_of(kozomol_core::ReviewDecision::ALL.iter().map(|d| d.as_str()).collect()),
                    "plate": { "type": "string", "description": "The plate as it should read (correct_plate)." },
                    "reason": enum_of(kozomol_core::RejectReason::ALL.iter().map(|r| r.as_str()).collect()),
                    "note": { "type": "string", "maxLength": 2000 },
                    "seen_state": { "$ref": "#/components/schemas/CaseState", "description": "The state the case was shown in: another now is 409." },
                    "seen_move": { "type": "integer", "format": "int64", "description": "The id of the case's latest audit row that moved it (to_state set), as shown: another now is 409." }
                }
            }));
    schemas.insert(
        "ReviewResult".into(),
        json!({
            "type": "object", "required": ["case_id", "state", "plate", "href"],
            "properties": {
                "case_id": { "type": "integer", "format": "int64" },
                "state": { "$ref": "#/components/schemas/CaseState" },
                "plate": { "type": ["string", "null"] },
                "href": text
            }
        }),
    );
    schemas.insert("Review".into(), json!({
                "type": "object",
                "required": ["id", "case_id", "tier", "reviewer", "decision", "from_state", "to_state", "decided_at"],
                "properties": {
                    "id": { "type": "integer" },
                    "case_id": { "type": "integer", "format": "int64" },
                    "tier": enum_of(kozomol_core::ReviewTier::ALL.iter().map(|t| t.as_str()).collect()),
                    "reviewer": text,
                    "decision": enum_of(kozomol_core::ReviewDecision::ALL.iter().map(|d| d.as_str()).collect()),
                    "reason": { "type": ["string", "null"] },
                    "plate": { "type": ["string", "null"] },
                    "note": { "type": ["string", "null"] },
                    "from_state": { "$ref": "#/components/schemas/CaseState" },
                    "to_state": { "$ref": "#/components/schemas/CaseState" },
                    "decided_at": instant
                }
            }));
    let money = json!({
        "type": "object", "required": ["minor", "currency"],
        "properties": { "minor": { "type": "integer", "format": "int64" }, "currency": { "type": "string", "enum": ["KGS", "KZT"] } }
    });
    schemas.insert("Resolution".into(), json!({
        "type": "object",
        "required": ["number", "case_id", "payment_code", "jurisdiction", "article", "units", "amount", "issued_at", "pdf_sha256", "signature", "signature_key_id", "signer", "pdf_href", "verify_href", "case_href"],
        "properties": {
            "number": text,
            "case_id": { "type": "integer", "format": "int64" },
            "payment_code": text,
            "jurisdiction": { "type": "string", "enum": ["kg", "kz"] },
            "article": { "type": "string", "description": "The article part it was priced under: the repeat part for a repeat." },
            "units": { "type": "integer" },
            "amount": money,
            "discounted": { "oneOf": [money, { "type": "null" }] },
            "repeat_of": { "type": ["string", "null"], "description": "The offender's earlier resolution that made this offence a repeat." },
            "issued_at": instant,
            "pdf_sha256": text,
            "signature": { "type": "string", "description": "The Ed25519 signature, hex." },
            "signature_key_id": text,
            "signer": { "type": "string", "description": "issuer:NAME or officer:BADGE." },
            "pdf_href": text,
            "verify_href": text,
            "case_href": text
        }
    }));
    schemas.insert("Session".into(), json!({
        "type": "object", "required": ["login", "role", "csrf_token"],
        "properties": {
            "login": text, "role": { "type": "string", "enum": ["reviewer", "supervisor", "finance", "admin", "auditor"] },
            "csrf_token": { "type": "string", "description": "Send as `X-CSRF-Token` with every change in this session." }
        }
    }));
    schemas.insert("LookupRequest".into(), json!({
        "type": "object", "additionalProperties": false,
        "description": "Either `plate` with `certificate`, or `resolution`, or `payment_code`.",
        "properties": {
            "plate": text,
            "certificate": { "type": "string", "description": "The vehicle registration certificate number." },
            "resolution": text, "payment_code": text
        }
    }));
    schemas.insert("PublicAppeal".into(), json!({
        "type": "object", "required": ["id", "state", "filed_at", "decided_at", "decision_note"],
        "properties": {
            "id": { "type": "integer" }, "state": { "type": "string", "enum": ["filed", "rejected", "annulled"] },
            "filed_at": instant, "decided_at": { "type": ["string", "null"], "format": "date-time" }, "decision_note": nullable_text
        }
    }));
    let nullable_minor = json!({ "type": ["integer", "null"] });
    let nullable_date = json!({ "type": ["string", "null"], "format": "date" });
    schemas.insert("PublicFine".into(), json!({
        "type": "object",
        "required": ["number", "payment_code", "grant", "grant_expires_at", "status", "case_state", "kind", "violation", "article",
            "captured_on", "captured_at", "plate", "place", "issued_on", "issued_at", "currency", "amount_minor", "discounted_minor", "discount_until", "due",
            "appeal_until", "outstanding_minor", "paid_minor", "qr_payload", "card_payment_url", "contacts_url", "contact_channels", "owner_view", "frames", "pdf_url", "qr_svg_url", "appeal"],
        "properties": {
            "number": text, "payment_code": text, "grant": text, "grant_expires_at": instant,
            "status": { "type": "string", "enum": ["unpaid", "partially_paid", "paid", "appealed", "cancelled", "enforcement", "closed"] },
            "case_state": text, "kind": text, "violation": text, "article": text,
            "captured_on": { "type": "string", "format": "date", "description": "The day of the violation, in the jurisdiction's calendar." },
            "captured_at": { "type": ["string", "null"], "format": "date-time", "description": "The moment; only with an owner's grant (`owner_view`)." },
            "plate": { "type": ["string", "null"], "description": "Whole only with an owner's grant; else its first two and last two characters, the rest `•`." },
            "place": { "type": ["object", "null"], "description": "Only with an owner's grant.", "properties": { "address": text, "latitude": nullable_text, "longitude": nullable_text, "map_url": nullable_text } },
            "issued_on": { "type": "string", "format": "date", "description": "The day the resolution was issued, in the jurisdiction's calendar." },
            "issued_at": { "type": ["string", "null"], "format": "date-time", "description": "The moment; only with an owner's grant." },
            "currency": text, "amount_minor": { "type": "integer" }, "discounted_minor": nullable_minor,
            "discount_until": nullable_date.clone(), "due": nullable_date.clone(), "appeal_until": nullable_date,
            "outstanding_minor": { "type": "integer" }, "paid_minor": { "type": "integer" }, "qr_payload": nullable_text,
            "card_payment_url": { "type": ["string", "null"], "description": "The card provider's checkout, returning to the portal." },
            "contacts_url": { "type": ["string", "null"], "description": "Where the owner asks for notices of this vehicle's resolutions; only for a fine found by plate and certificate, and only where some channel sends the confirmation code." },
            "contact_channels": { "type": "array", "items": { "type": "string", "enum": ["sms", "email"] }, "description": "The channels `contacts_url` takes." },
            "owner_view": { "type": "boolean", "description": "A grant from a lookup by plate and certificate: photos, PDF, appeals and notices open." },
            "frames": { "type": "array", "items": text }, "pdf_url": nullable_text, "qr_svg_url": nullable_text,
            "appeal": { "oneOf": [ { "type": "null" }, { "$ref": "#/components/schemas/PublicAppeal" } ] }
        }
    }));
    schemas.insert("OpenData".into(), json!({
        "type": "object", "required": ["from", "to", "rows"],
        "properties": {
            "from": date, "to": date,
            "rows": { "type": "array", "items": {
                "type": "object",
                "required": ["day", "hour", "site_id", "site", "latitude", "longitude", "kind", "recorded", "fined"],
                "properties": {
                    "day": date, "hour": { "type": "integer", "minimum": 0, "maximum": 23 },
                    "site_id": nullable_text, "site": nullable_text, "latitude": nullable_text, "longitude": nullable_text,
                    "kind": text,
                    "recorded": { "type": ["integer", "null"], "description": "Null where 1 to 4: withheld, as it points at the few who drove past." },
                    "fined": { "type": ["integer", "null"], "description": "Null where withheld: when it, the violations not fined, or `recorded` is 1 to 4." }
                }
            } }
        }
    }));
    schemas.insert("LookupAnswer".into(), json!({
        "type": "object", "required": ["fines"],
        "properties": { "fines": { "type": "array", "items": { "$ref": "#/components/schemas/PublicFine" } } }
    }));
    schemas.insert("AppealRequest".into(), json!({
        "type": "object", "required": ["appellant", "grounds"],
        "properties": {
            "appellant": text, "contact": text, "grounds": text,
            "attachments": { "type": "array", "maxItems": 10, "items": {
                "type": "object", "required": ["name", "content_type", "data"],
                "properties": {
                    "name": text,
                    "content_type": { "type": "string", "enum": ["image/jpeg", "image/png", "application/pdf"] },
                    "data": { "type": "string", "contentEncoding": "base64" }
                }
            } }
        }
    }));
    schemas.insert("Appeal".into(), json!({
        "type": "object",
        "required": ["id", "case_id", "resolution_number", "appellant", "grounds", "filed_at", "filed_by", "from_state", "state", "attachments"],
        "properties": {
            "id": { "type": "integer", "format": "int64" },
            "case_id": { "type": "integer", "format": "int64" },
            "resolution_number": text,
            "appellant": text,
            "contact": nullable_text,
            "grounds": text,
            "filed_at": instant,
            "filed_by": text,
            "from_state": { "$ref": "#/components/schemas/CaseState" },
            "state": { "type": "string", "enum": ["filed", "rejected", "annulled"] },
            "decided_by": nullable_text,
            "decided_at": { "type": ["string", "null"], "format": "date-time" },
            "decision_note": nullable_text,
            "attachments": { "type": "array", "items": {
                "type": "object", "required": ["position", "name", "content_type", "sha256"],
                "properties": { "position": { "type": "integer" }, "name": text, "content_type": text, "sha256": text }
            } }
        }
    }));
    schemas.insert("AppealDecision".into(), json!({
        "type": "object", "required": ["decision", "note"],
        "properties": { "decision": { "type": "string", "enum": ["rejected", "annulled"] }, "note": text }
    }));
    schemas.insert(
        "AppealDecisionResult".into(),
        json!({
            "type": "object", "required": ["appeal_id", "case_id", "state", "refund_request"],
            "properties": {
                "appeal_id": { "type": "integer" }, "case_id": { "type": "integer" },
                "state": { "$ref": "#/components/schemas/CaseState" },
                "refund_request": { "type": ["integer", "null"] }
            }
        }),
    );
    schemas.insert("BulkVoidRequest".into(), json!({
        "type": "object", "required": ["device_serial", "captured_from", "captured_until", "reason"],
        "properties": { "device_serial": text, "captured_from": instant, "captured_until": instant, "reason": text }
    }));
    schemas.insert(
        "BulkVoidResult".into(),
        json!({
            "type": "object", "required": ["id", "voided", "refund_requests"],
            "properties": {
                "id": { "type": "integer" },
                "voided": { "type": "array", "items": { "type": "integer" } },
                "refund_requests": { "type": "integer" }
            }
        }),
    );
    schemas.insert("NewPaymentIntent".into(), json!({
        "type": "object", "required": ["payment_code"], "additionalProperties": false,
        "properties": {
            "payment_code": { "type": "string", "pattern": "^[1-9][0-9]{17}$" },
            "amount_minor": { "type": "integer", "minimum": 1, "maximum": kozomol_payments::MAX_PAYMENT_MINOR, "description": "Default: due today." },
            "currency": { "type": "string", "description": "If given, the fine's (KGS, KZT)." }
        }
    }));
    schemas.insert("PaymentIntent".into(), json!({
        "type": "object",
        "required": ["id", "status", "payment_code", "resolution_number", "amount_minor", "currency", "created_at", "updated_at"],
        "properties": {
            "id": text, "status": { "type": "string", "enum": ["requires_payment", "succeeded", "cancelled", "reversed"] },
            "payment_code": text, "resolution_number": text,
            "amount_minor": { "type": "integer" }, "currency": text,
            "payment_id": { "type": ["integer", "null"] },
            "created_at": instant, "updated_at": instant,
            "outstanding_minor": { "type": "integer", "description": "What the fine asks for today." }
        }
    }));
    schemas.insert("PaymentCallback".into(), json!({
        "type": "object", "required": ["id", "type", "data"], "additionalProperties": false,
        "properties": {
            "id": { "type": "string", "description": "The provider's id of the event." },
            "type": { "type": "string", "enum": ["payment.succeeded", "payment.reversed"] },
            "data": {
                "type": "object", "additionalProperties": false,
                "required": ["payment_id", "payment_code", "amount_minor", "currency", "paid_at"],
                "properties": {
                    "payment_id": { "type": "string", "description": "The provider's id of the payment: the same id again is the same payment." },
                    "payment_code": text,
                    "intent": { "type": "string", "description": "The intent paid: the payment must be its fine and amount." },
                    "amount_minor": { "type": "integer", "minimum": 1, "maximum": kozomol_payments::MAX_PAYMENT_MINOR },
                    "currency": text,
                    "paid_at": { "type": "string", "format": "date-time", "description": "When the payer paid: it decides the discount." },
                    "reason": { "type": "string", "description": "Why a payment is taken back." }
                }
            }
        }
    }));
    schemas.insert("PaymentCallbackAnswer".into(), json!({
        "type": "object", "required": ["outcome", "payment"],
        "properties": {
            "outcome": { "type": "string", "enum": ["applied", "repeat"] },
            "payment": { "type": "object", "description": "The ledger's payment: id, resolution_number, case_id, channel, source, external_id, amount, paid_at, posted_at, from_state, to_state, excess_minor (paid beyond what was due), reversed_at." }
        }
    }));
    schemas.insert("PaymentCallbackPage".into(), json!({
        "type": "object", "required": ["items"],
        "properties": {
            "items": { "type": "array", "items": {
                "type": "object",
                "required": ["id", "provider", "received_at", "signature", "body", "outcome", "status", "detail"],
                "properties": {
                    "id": { "type": "integer" }, "provider": text, "received_at": instant,
                    "event_id": nullable_text, "event_type": nullable_text,
                    "signature": text, "body": text,
                    "outcome": { "type": "string", "enum": ["applied", "repeat", "refused"] },
                    "status": { "type": "integer" }, "detail": text
                }
            } },
            "next": { "type": ["integer", "null"] }
        }
    }));
    let statement_line = json!({
        "type": "object",
        "required": ["id", "account", "statement_id", "bank_reference", "booked_on", "amount", "remittance", "codes", "status", "detail", "imported_at", "imported_by"],
        "properties": {
            "id": { "type": "integer" }, "account": text, "statement_id": text, "bank_reference": text,
            "booked_on": date,
            "paid_on": { "type": ["string", "null"], "format": "date", "description": "The day the payer paid, where the statement says (camt RltdDts/AccptncDtTm, CSV paid_date); a payment applied from the line is dated that day." },
            "amount": { "type": "object", "properties": { "minor": { "type": "integer" }, "currency": text } },
            "remittance": text, "payer": nullable_text,
            "codes": { "type": "array", "items": text },
            "status": { "type": "string", "enum": ["applied", "matched", "unmatched", "ambiguous", "refused", "resolved"] },
            "payment_id": { "type": ["integer", "null"] }, "detail": text,
            "imported_at": instant, "imported_by": text,
            "resolved_at": { "type": ["string", "null"], "format": "date-time" }, "resolved_by": nullable_text
        }
    });
    schemas.insert("StatementLine".into(), statement_line);
    schemas.insert("StatementLinePage".into(), json!({
        "type": "object", "required": ["items"],
        "properties": {
            "items": { "type": "array", "items": { "$ref": "#/components/schemas/StatementLine" } },
            "next": { "type": ["integer", "null"] }
        }
    }));
    schemas.insert("StatementLineResolution".into(), json!({
        "type": "object", "required": ["action", "note"], "additionalProperties": false,
        "properties": {
            "action": { "type": "string", "enum": ["apply", "dismiss"] },
            "payment_code": { "type": "string", "description": "With `apply`: the fine the money is for." },
            "note": { "type": "string", "maxLength": 2000 }
        }
    }));
    schemas.insert("StatementImport".into(), json!({
        "type": "object",
        "required": ["account", "statement_id", "credits", "skipped", "applied", "matched", "queued", "repeats", "lines", "reversals"],
        "properties": {
            "account": text, "statement_id": text,
            "credits": { "type": "integer" }, "skipped": { "type": "integer", "description": "Debits, reversed debits and entries not booked." },
            "reversals": { "type": "array", "description": "The credits the bank took back (camt.053 `DBIT` with `RvslInd`), and what each did.", "items": {
                "type": "object", "required": ["bank_reference", "amount_minor", "currency", "outcome", "payment_id", "detail"],
                "properties": {
                    "bank_reference": text, "amount_minor": { "type": "integer" }, "currency": text,
                    "outcome": { "type": "string", "enum": ["reversed", "already_reversed", "dismissed", "already_settled", "no_credit", "ambiguous", "not_reversible"] },
                    "payment_id": { "type": ["integer", "null"] }, "detail": text
                }
            } },
            "applied": { "type": "integer" }, "matched": { "type": "integer" }, "queued": { "type": "integer" }, "repeats": { "type": "integer" },
            "lines": { "type": "array", "items": {
                "type": "object", "required": ["id", "bank_reference", "status", "detail", "repeat"],
                "properties": {
                    "id": { "type": "integer" }, "bank_reference": text,
                    "status": { "type": "string", "enum": ["applied", "matched", "unmatched", "ambiguous", "refused", "resolved"] },
                    "payment_id": { "type": ["integer", "null"] }, "detail": text, "repeat": { "type": "boolean" }
                }
            } }
        }
    }));
    let pair = json!({ "type": "array", "items": { "type": "integer" }, "minItems": 2, "maxItems": 2, "description": "[count, minor units]" });
    schemas.insert(
        "PaymentTotals".into(),
        json!({
            "type": "object", "required": ["currency", "days", "balanced"],
            "properties": {
                "currency": { "type": "string", "description": "Of every sum: the jurisdiction's (ISO 4217)." },
                "balanced": { "type": "boolean" },
                "days": { "type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "day": date, "soap": pair, "api": pair, "statement": pair,
                        "awaiting_statement": pair, "credits": pair, "credits_applied": pair,
                        "credits_matched": pair, "credits_queued": pair, "credits_resolved": pair
                    }
                } }
            }
        }),
    );
    schemas.insert("RefundRequest".into(), json!({
        "type": "object",
        "required": ["id", "case_id", "resolution_number", "cause", "payment_id", "amount", "detail", "requested_at", "requested_by", "state", "settled_at", "settled_by", "reference", "note"],
        "properties": {
            "id": { "type": "integer" }, "case_id": { "type": "integer" },
            "resolution_number": text,
            "cause": { "type": "string", "enum": ["annulled", "voided", "excess"], "description": "`annulled`/`voided`: the money the case took, less its excess owed apart; `excess`: what the fine's payments brought beyond it, on the payment that brought it." },
            "payment_id": { "type": ["integer", "null"], "description": "The payment whose excess it is (`excess` only)." },
            "amount": money,
            "detail": text, "requested_at": instant, "requested_by": text,
            "state": { "type": "string", "enum": ["queued", "refunded", "cancelled", "withdrawn"], "description": "`cancelled` by finance; `withdrawn`: an excess a reversal of one of the fine's payments no longer leaves (what the rest brings is queued again)." },
            "settled_at": { "type": ["string", "null"], "format": "date-time" },
            "settled_by": { "type": ["string", "null"] },
            "reference": { "type": ["string", "null"], "description": "The transfer's reference at the bank or provider." },
            "note": { "type": ["string", "null"] }
        }
    }));
    schemas.insert("RefundPage".into(), json!({
        "type": "object", "required": ["items"],
        "properties": {
            "items": { "type": "array", "items": { "$ref": "#/components/schemas/RefundRequest" } },
            "next": { "type": ["integer", "null"] }
        }
    }));
    schemas.insert("RefundSettlement".into(), json!({
        "type": "object", "required": ["outcome"],
        "properties": {
            "outcome": { "type": "string", "enum": ["refunded", "cancelled"] },
            "reference": { "type": "string", "maxLength": 200, "description": "Required when refunded: the transfer's reference." },
            "note": { "type": "string", "maxLength": 200, "description": "Required when cancelled: why it is not paid back." }
        }
    }));
    schemas.insert("DeliveryProof".into(), json!({
        "type": "object", "required": ["kind", "delivered_at"],
        "properties": {
            "kind": { "type": "string", "enum": ["return_receipt", "portal"] },
            "delivered_at": instant,
            "source": { "type": "string", "description": "The delivering system (portal reports)." },
            "proof": { "type": "object" }
        }
    }));
    schemas.insert("DeliveryProofResult".into(), json!({
        "type": "object", "required": ["delivery_id", "recorded", "delivered_at"],
        "properties": {
            "delivery_id": { "type": "integer" },
            "recorded": { "type": "string", "enum": ["first", "additional", "already_recorded"] },
            "delivered_at": instant
        }
    }));
    schemas.insert("ContactRequest".into(), json!({
        "type": "object", "required": ["channel", "address"],
        "properties": { "channel": { "type": "string", "enum": ["sms", "email"] }, "address": text }
    }));
    schemas.insert(
        "ContactConfirmationRequested".into(),
        json!({
            "type": "object", "required": ["handle", "confirm_url", "expires_at", "tries"],
            "properties": {
                "handle": text,
                "confirm_url": { "type": "string", "description": "Where the code is posted." },
                "expires_at": instant,
                "tries": { "type": "integer", "description": "How many codes may be typed." }
            }
        }),
    );
    schemas.insert("ContactCode".into(), json!({
        "type": "object", "required": ["code"],
        "properties": { "code": { "type": "string", "description": "The six digits sent to the contact." } }
    }));
    schemas.insert("ContactResult".into(), json!({
        "type": "object", "required": ["id", "planned", "already_known"],
        "properties": { "id": { "type": "integer" }, "planned": { "type": "integer" }, "already_known": { "type": "boolean" } }
    }));
    schemas.insert("Verification".into(), json!({
        "type": "object",
        "required": ["valid", "verdict", "number", "sha256", "signed_sha256", "key_id", "signer", "algorithm", "issued_at"],
        "properties": {
            "valid": { "type": "boolean" },
            "verdict": { "type": "string", "enum": ["valid", "hash_mismatch", "bad_signature", "unknown_key"] },
            "number": text,
            "sha256": text,
            "signed_sha256": text,
            "key_id": text,
            "signer": text,
            "algorithm": { "type": "string", "enum": ["ed25519"] },
            "issued_at": instant
        }
    }));
    schemas.insert("ResolutionKeys".into(), json!({
        "type": "object", "required": ["keys"],
        "properties": { "keys": { "type": "array", "items": {
            "type": "object", "required": ["key_id", "algorithm", "public_key"],
            "properties": { "key_id": text, "algorithm": { "type": "string", "enum": ["ed25519"] }, "public_key": text }
        } } }
    }));
    schemas.insert(
        "LoginRequest".into(),
        json!({
            "type": "object", "required": ["login", "password"],
            "properties": { "login": text, "password": { "type": "string", "format": "password" } }
        }),
    );
    schemas.insert(
        "TokenAnswer".into(),
        json!({
            "type": "object", "required": ["token", "role"],
            "properties": { "token": text, "role": { "$ref": "#/components/schemas/Role" } }
        }),
    );
    schemas.insert("NewAccount".into(), json!({
                "type": "object", "required": ["login", "role", "password"],
                "properties": {
                    "login": { "type": "string", "pattern": "^[a-z0-9._@-]{1,64}$" },
                    "role": { "$ref": "#/components/schemas/Role" },
                    "password": { "type": "string", "format": "password", "minLength": 12, "maxLength": 256 },
                    "full_name": { "type": "string", "minLength": 2, "maxLength": 120, "description": "Letters, spaces, `-`, `.` and `'`, trimmed. Required, with `badge`, for a reviewer or supervisor." },
                    "badge": { "type": "string", "pattern": "^[A-Za-z0-9/-]{1,32}$" }
                }
            }));
    schemas.insert("Officer".into(), json!({
                "type": "object", "required": ["full_name", "badge"],
                "properties": {
                    "full_name": { "type": "string", "minLength": 2, "maxLength": 120, "description": "Letters, spaces, `-`, `.` and `'`, trimmed." },
                    "badge": { "type": "string", "pattern": "^[A-Za-z0-9/-]{1,32}$", "description": "Stored upper-cased; one officer's." }
                }
            }));
    schemas.insert("Account".into(), json!({
                "type": "object", "required": ["id", "login", "role", "officer", "disabled"],
                "properties": {
                    "id": { "type": "integer" }, "login": text, "role": { "$ref": "#/components/schemas/Role" },
                    "officer": { "oneOf": [{ "$ref": "#/components/schemas/Officer" }, { "type": "null" }] },
                    "disabled": { "type": "boolean" }
                }
            }));
    schemas.insert("AccountChange".into(), json!({
                "type": "object", "additionalProperties": false, "minProperties": 1,
                "properties": {
                    "role": { "$ref": "#/components/schemas/Role" },
                    "password": { "type": "string", "format": "password", "minLength": 12, "maxLength": 256 },
                    "disabled": { "type": "boolean" }
                }
            }));
    schemas.insert("PasswordChange".into(), json!({
                "type": "object", "additionalProperties": false,
                "required": ["current_password", "new_password"],
                "properties": {
                    "current_password": { "type": "string", "format": "password" },
                    "new_password": { "type": "string", "format": "password", "minLength": 12, "maxLength": 256 }
                }
            }));
    schemas.insert("AccountList".into(), json!({ "type": "object", "required": ["items"],
                "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Account" } } } }));
    schemas.insert(
        "ServerKey".into(),
        json!({
            "type": "object", "required": ["kid", "algorithm", "public_key"],
            "properties": { "kid": text, "algorithm": { "const": "EdDSA" }, "public_key": hex32 }
        }),
    );
    schemas.insert(
        "Certificate".into(),
        json!({
            "type": "object", "required": ["number", "valid_from", "valid_until"],
            "properties": { "number": text, "valid_from": date, "valid_until": date }
        }),
    );
    schemas.insert("Site".into(), json!({
                "type": "object", "required": ["id", "lat_e6", "lon_e6", "address", "direction", "lane"],
                "properties": {
                    "id": text,
                    "lat_e6": { "type": "integer", "minimum": -90000000, "maximum": 90000000 },
                    "lon_e6": { "type": "integer", "minimum": -180000000, "maximum": 180000000 },
                    "address": text, "direction": text,
                    "lane": { "type": "integer", "minimum": 1, "maximum": 255 }
                }
            }));
    schemas.insert("CameraRegistration".into(), json!({
                "type": "object",
                "required": ["camera_id", "public_key", "device_serial", "certificate", "site"],
                "properties": {
                    "camera_id": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$" },
                    "public_key": { "type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "Ed25519 public key, hex." },
                    "device_serial": text,
                    "certificate": { "$ref": "#/components/schemas/Certificate" },
                    "site": { "$ref": "#/components/schemas/Site" }
                }
            }));
    schemas.insert("Camera".into(), json!({
                "type": "object",
                "properties": {
                    "camera_id": text, "public_key": hex32, "device_serial": text,
                    "certificates": { "type": "array", "items": { "$ref": "#/components/schemas/Certificate" } },
                    "site": { "$ref": "#/components/schemas/Site" },
                    "registered_at": instant,
                    "last_seen": { "type": ["string", "null"], "format": "date-time" },
                    "online": { "type": "boolean", "description": "Its last status said online and it was heard from (an event or an online status) in the last 3 minutes." },
                    "outbox_depth": { "type": ["integer", "null"] },
                    "clock_offset_ms": { "type": ["integer", "null"] },
                    "status_at": { "type": ["string", "null"], "format": "date-time" },
                    "heard_at": { "type": ["string", "null"], "format": "date-time", "description": "Its newest event or online status." },
                    "href": text
                }
            }));
    schemas.insert("CameraList".into(), json!({ "type": "object", "required": ["items"],
                "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Camera" } } } }));
    schemas.insert(
        "CameraConfig".into(),
        json!({
            "type": "object", "required": ["version", "issued_at_ms", "speed_limits"],
            "properties": {
                "version": { "type": "integer", "minimum": 1 },
                "issued_at_ms": { "type": "integer" },
                "speed_limits": { "type": "array", "items": {
                    "type": "object", "required": ["lane", "limit_kmh", "from", "until"],
                    "properties": {
                        "lane": { "type": "integer", "minimum": 1 },
                        "limit_kmh": { "type": "integer", "minimum": 1, "maximum": 300 },
                        "from": { "type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$" },
                        "until": { "type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$" }
                    } } }
            }
        }),
    );
    schemas.insert("ConfigPublished".into(), json!({
                "type": "object",
                "properties": { "camera_id": text, "version": { "type": "integer" }, "topic": text, "signed_config_sha256": hex32 }
            }));
    schemas.insert("CaseSummary".into(), json!({
                "type": "object",
                "properties": {
                    "id": { "type": "integer", "format": "int64" }, "event_id": { "type": "string", "format": "uuid" },
                    "camera_id": nullable_text, "captured_at": instant, "received_at": instant,
                    "kind": text, "state": { "$ref": "#/components/schemas/CaseState" },
                    "plate": nullable_text, "enforceable": { "type": "boolean" }, "href": text
                }
            }));
    schemas.insert("CasePage".into(), json!({
                "type": "object", "required": ["items", "next"],
                "properties": {
                    "items": { "type": "array", "items": { "$ref": "#/components/schemas/CaseSummary" } },
                    "next": nullable_text
                }
            }));
    schemas.insert("Frame".into(), json!({
                "type": "object",
                "properties": {
                    "index": { "type": "integer" }, "role": { "type": "string", "enum": ["overview", "plate"] },
                    "sha256": hex32, "len": { "type": "integer" }, "url": text
                }
            }));
    schemas.insert("AuditEntry".into(), json!({
                "type": "object",
                "properties": {
                    "id": { "type": "integer" }, "case_id": { "type": ["integer", "null"] }, "at": instant,
                    "actor": text, "action": text,
                    "from_state": { "type": ["string", "null"] }, "to_state": { "type": ["string", "null"] },
                    "detail": nullable_text, "hash": text
                }
            }));
    schemas.insert("CaseDetail".into(), json!({
                "type": "object",
                "properties": {
                    "id": { "type": "integer", "format": "int64" }, "event_id": { "type": "string", "format": "uuid" },
                    "camera_id": nullable_text, "captured_at": instant, "received_at": instant,
                    "kind": text, "state": { "$ref": "#/components/schemas/CaseState" },
                    "plate": nullable_text, "enforceable": { "type": "boolean" },
                    "enforceability_note": nullable_text, "fingerprint": hex32,
                    "event": { "type": "object", "description": "The event as the camera signed it." },
                    "personal_data_purged_at": { "type": ["string", "null"], "format": "date-time", "description": "When the retention purge took the owner's, driver's and appellant's personal data out of the case." },
                    "evidence_destroyed_at": { "type": ["string", "null"], "format": "date-time", "description": "When the case file (photos, signed PDF, appeal files) was destroyed at the end of its archive period; its evidence answers 410 since." },
                    "frames": { "type": "array", "items": { "$ref": "#/components/schemas/Frame" } },
                    "recognition": { "oneOf": [{ "type": "null" }, { "$ref": "#/components/schemas/Recognition" }] },
                    "plate_crop_url": nullable_text,
                    "resolution": nullable_text,
                    "resolution_href": nullable_text,
                    "audit": { "type": "array", "items": { "$ref": "#/components/schemas/AuditEntry" } },
                    "camera_href": text
                }
            }));
    let plate_read = json!({
        "type": "object",
        "properties": {
            "text": text,
            "confidence_milli": { "type": "integer", "minimum": 0, "maximum": 1000 },
            "country": nullable_text
        }
    });
    schemas.insert("Recognition".into(), json!({
                "type": "object",
                "description": "The recognizer's decision on a case: its read, the alternatives, where the plate is, and whether the camera's read agrees.",
                "properties": {
                    "case_id": { "type": "integer", "format": "int64" },
                    "decision": { "type": "string", "enum": ["recognized", "needs_review"] },
                    "worker": text, "attempts": { "type": "integer" }, "decided_at": instant,
                    "plate": { "oneOf": [{ "type": "null" }, plate_read] },
                    "char_confidences_milli": { "type": "array", "items": { "type": "integer" } },
                    "candidates": { "type": "array", "items": plate_read },
                    "plate_box": { "oneOf": [{ "type": "null" }, { "type": "object", "properties": {
                        "frame_index": { "type": "integer" }, "x": { "type": "integer" }, "y": { "type": "integer" },
                        "w": { "type": "integer" }, "h": { "type": "integer" } } }] },
                    "crop": { "oneOf": [{ "type": "null" }, { "type": "object", "properties": { "sha256": hex32 } }] },
                    "model": nullable_text,
                    "camera_read": { "oneOf": [{ "type": "null" }, plate_read] },
                    "agreement": { "type": ["boolean", "null"] },
                    "error": nullable_text
                }
            }));
    schemas.insert("DeadLetter".into(), json!({
                "type": "object",
                "properties": {
                    "id": { "type": "integer", "format": "int64" }, "received_at": instant, "topic": text,
                    "camera_id": nullable_text, "event_id": nullable_text,
                    "reason": { "type": "string", "enum": kozomol_core::DeadLetterReason::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>() },
                    "detail": text, "raw_len": { "type": "integer" }, "raw_kept": { "type": "integer", "description": "Bytes kept of the message: at most 64 KiB (all of an `unstorable` event), 0 once the retention purge dropped them." }, "raw_url": text
                }
            }));
    schemas.insert("DeadLetterPage".into(), json!({
                "type": "object", "required": ["items", "next"],
                "properties": {
                    "items": { "type": "array", "items": { "$ref": "#/components/schemas/DeadLetter" } },
                    "next": nullable_text
                }
            }));
    checks_schemas(&mut schemas);
    owner_liability_schemas(&mut schemas);
    officer_filings_schemas(&mut schemas);
    let mut components = security_schemes;
    components["schemas"] = Value::Object(schemas);
    components
}
