//! The one error type of the HTTP API, its table of codes, and the responder
//! that turns every failure into `{"code": <int>, "message": "<text>"}`.

use rocket::http::{ContentType, Header, Status};
use rocket::response::{self, Responder, Response};
use rocket::Request;
use serde_json::json;

use crate::domain::lifecycle::Refusal;
use crate::os_templates::TemplateError;
use crate::service::{ArrivalError, ServiceError};

/// Every failure the API can answer with. `code` and `status` below are the
/// table documented in the README; keep the two in step.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    Validation(String),
    #[error(
        "'{0}' is not a valid id (expected a UUID such as 54e21881-8620-4bb0-95f1-05f143973a6e)"
    )]
    InvalidId(String),
    #[error("content type must be {expected}, got {got}")]
    UnsupportedMediaType { got: String, expected: &'static str },
    #[error("request body is larger than the {0} allowed here")]
    PayloadTooLarge(String),
    #[error("no such route: {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("method {method} is not allowed on {path}; allowed: {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: String,
    },
    #[error(
        "the request method is not one berth implements (it uses GET, POST, PATCH and DELETE)"
    )]
    MethodNotImplemented,
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error("job {0} not found")]
    JobNotFound(String),
    // Says where templates come from: a newcomer's first create may be the
    // first time they hear that berth needs one. `node`: the node the
    // create named, which does not have it (templates are per node).
    #[error("{}", template_not_found_text(.name, .node.as_deref()))]
    TemplateNotFound { name: String, node: Option<String> },
    #[error("template '{0}' not found")]
    TemplateMissing(String),
    #[error("node '{0}' not found")]
    NodeNotFound(String),
    #[error("{0}")]
    UnknownNode(String),
    #[error("{0}")]
    NodeUnavailable(String),
    #[error("{0}")]
    AlreadyOnNode(String),
    #[error("{0}")]
    MoveRefused(String),
    #[error("{0}")]
    UsageElsewhere(String),
    #[error("{0}")]
    NodeUnreachable(String),
    #[error("taking in the container's files failed: {0}")]
    MoveFailed(String),
    #[error("a container named '{0}' already exists")]
    NameTaken(String),
    #[error("{0}")]
    ContainerDeleting(String),
    #[error("{0}")]
    ContainerFailed(String),
    #[error("{0}")]
    JobFinished(String),
    #[error("{0}")]
    JobNotCancellable(String),
    #[error("{0}")]
    TemplateInUse(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("Idempotency-Key '{0}' was already used with a different request; use a new key")]
    IdempotencyKeyReused(String),
    #[error("{0}")]
    TemplateExists(String),
    #[error("authentication required: {0}")]
    Unauthorized(String),
    #[error("too many failed authentication attempts from this address; try again in {0} s")]
    TooManyAttempts(u64),
    #[error(
        "refused a request that changes state from another site's page (Origin '{0}'); \
         berth's API takes such requests from its own pages and from clients that send no Origin"
    )]
    CrossOrigin(String),
    #[error(
        "host '{0}' is not served: with auth = \"none\" berth answers only requests to \
         localhost, 127.0.0.1 or [::1] and to the names in allowed_hosts (a defence against \
         DNS rebinding); add the name to allowed_hosts or turn on token authentication"
    )]
    HostNotAllowed(String),
    #[error("berth is shutting down; try again shortly")]
    Unavailable,
    #[error("the database cannot be reached ({0}); nothing was changed, try again shortly")]
    DatabaseUnavailable(String),
    #[error("unhealthy: {0}")]
    Unhealthy(String),
    #[error("internal error; the server log has the details")]
    Internal(String),
    // exec and terminals (issue 14).
    #[error(
        "the exec request body is larger than {0}; send at most 1 MiB of stdin \
         (or feed larger input from a file inside the container)"
    )]
    ExecBodyTooLarge(String),
    #[error("{0}")]
    ContainerNotRunning(String),
    #[error("{0}")]
    ContainerOnOtherNode(String),
    #[error("{0}")]
    TooManyTerminals(String),
    #[error("{0}")]
    AttachFailed(String),
    // Storage pools, snapshots and clones (1010-1019, 2010-2019, 3010-3019).
    #[error("{0}")]
    UnknownPool(String),
    #[error("{0}")]
    PoolUnusable(String),
    #[error("{0}")]
    PoolCannotMove(String),
    #[error("{0}")]
    SnapshotNotFound(String),
    #[error("{0}")]
    SnapshotExists(String),
    // Backups and restore.
    #[error("{0}")]
    BackupUnreadable(String),
    #[error("backup {0} not found")]
    BackupNotFound(String),
    #[error("{0}")]
    BackupElsewhere(String),
    #[error("writing the backup upload failed: {0}")]
    BackupUploadFailed(String),
}

fn template_not_found_text(name: &str, node: Option<&str>) -> String {
    match node {
        None => format!(
            "template '{name}' not found in the template directory; add one with \
             `berth template import FILE` or POST /v1/templates/ \
             (see \"Getting an OS template\" in berth's README)"
        ),
        Some(node) => format!(
            "template '{name}' is not in the template directory of node '{node}' (each node \
             has its own); add it there (`berth template import FILE` on that host, or POST \
             /v1/templates/ on its API), or name another node or none"
        ),
    }
}

impl ApiError {
    /// The application code: stable, documented, distinct per cause.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::MalformedJson(_) => 1000,
            ApiError::InvalidBody(_) => 1001,
            ApiError::Validation(_) => 1002,
            ApiError::InvalidId(_) => 1003,
            ApiError::UnsupportedMediaType { .. } => 1004,
            ApiError::PayloadTooLarge(_) => 1005,
            ApiError::BadRequest(_) => 1006,
            ApiError::IdempotencyKeyReused(_) => 1007,
            ApiError::UnknownNode(_) => 1008,
            ApiError::RouteNotFound { .. } => 2000,
            ApiError::MethodNotAllowed { .. } => 2001,
            ApiError::MethodNotImplemented => 2006,
            ApiError::ContainerNotFound(_) => 2002,
            ApiError::JobNotFound(_) => 2003,
            ApiError::TemplateNotFound { .. } => 2004,
            ApiError::TemplateMissing(_) => 2005,
            ApiError::NodeNotFound(_) => 2007,
            ApiError::NameTaken(_) => 3000,
            ApiError::ContainerDeleting(_) => 3001,
            ApiError::TemplateExists(_) => 3002,
            ApiError::ContainerFailed(_) => 3003,
            ApiError::JobFinished(_) => 3004,
            ApiError::JobNotCancellable(_) => 3005,
            ApiError::TemplateInUse(_) => 3006,
            ApiError::NodeUnavailable(_) => 3007,
            ApiError::AlreadyOnNode(_) => 3008,
            ApiError::MoveRefused(_) => 3009,
            ApiError::UsageElsewhere(_) => 3040,
            ApiError::NodeUnreachable(_) => 5040,
            ApiError::Unauthorized(_) => 4000,
            ApiError::TooManyAttempts(_) => 4001,
            ApiError::CrossOrigin(_) => 4002,
            ApiError::HostNotAllowed(_) => 4003,
            ApiError::Internal(_) => 5000,
            ApiError::Unavailable => 5001,
            ApiError::DatabaseUnavailable(_) => 5003,
            ApiError::MoveFailed(_) => 5004,
            ApiError::Unhealthy(_) => 5002,
            ApiError::ExecBodyTooLarge(_) => 1030,
            ApiError::ContainerNotRunning(_) => 3030,
            ApiError::ContainerOnOtherNode(_) => 3031,
            ApiError::TooManyTerminals(_) => 3032,
            ApiError::AttachFailed(_) => 5030,
            ApiError::UnknownPool(_) => 1010,
            ApiError::PoolUnusable(_) => 3010,
            ApiError::PoolCannotMove(_) => 3011,
            ApiError::SnapshotNotFound(_) => 2010,
            ApiError::SnapshotExists(_) => 3012,
            ApiError::BackupUnreadable(_) => 1020,
            ApiError::BackupNotFound(_) => 2020,
            ApiError::BackupElsewhere(_) => 3020,
            ApiError::BackupUploadFailed(_) => 5020,
        }
    }

    pub fn status(&self) -> Status {
        match self {
            ApiError::MalformedJson(_) | ApiError::InvalidBody(_) | ApiError::InvalidId(_) => {
                Status::BadRequest
            }
            ApiError::BadRequest(_) => Status::BadRequest,
            ApiError::Validation(_)
            | ApiError::TemplateNotFound { .. }
            | ApiError::UnknownNode(_)
            | ApiError::IdempotencyKeyReused(_) => Status::UnprocessableEntity,
            ApiError::UnsupportedMediaType { .. } => Status::UnsupportedMediaType,
            ApiError::PayloadTooLarge(_) => Status::PayloadTooLarge,
            ApiError::RouteNotFound { .. }
            | ApiError::ContainerNotFound(_)
            | ApiError::JobNotFound(_)
            | ApiError::TemplateMissing(_)
            | ApiError::NodeNotFound(_) => Status::NotFound,
            ApiError::MethodNotAllowed { .. } => Status::MethodNotAllowed,
            ApiError::MethodNotImplemented => Status::NotImplemented,
            ApiError::NameTaken(_)
            | ApiError::ContainerDeleting(_)
            | ApiError::ContainerFailed(_)
            | ApiError::JobFinished(_)
            | ApiError::JobNotCancellable(_)
            | ApiError::TemplateInUse(_)
            | ApiError::NodeUnavailable(_)
            | ApiError::AlreadyOnNode(_)
            | ApiError::MoveRefused(_)
            | ApiError::UsageElsewhere(_)
            | ApiError::TemplateExists(_) => Status::Conflict,
            ApiError::Unauthorized(_) => Status::Unauthorized,
            ApiError::TooManyAttempts(_) => Status::TooManyRequests,
            ApiError::CrossOrigin(_) | ApiError::HostNotAllowed(_) => Status::Forbidden,
            ApiError::Internal(_) | ApiError::MoveFailed(_) => Status::InternalServerError,
            ApiError::NodeUnreachable(_) => Status::BadGateway,
            ApiError::Unavailable | ApiError::Unhealthy(_) | ApiError::DatabaseUnavailable(_) => {
                Status::ServiceUnavailable
            }
            ApiError::ExecBodyTooLarge(_) => Status::UnprocessableEntity,
            ApiError::ContainerNotRunning(_)
            | ApiError::ContainerOnOtherNode(_)
            | ApiError::TooManyTerminals(_) => Status::Conflict,
            ApiError::AttachFailed(_) => Status::InternalServerError,
            ApiError::UnknownPool(_) => Status::UnprocessableEntity,
            ApiError::PoolUnusable(_)
            | ApiError::PoolCannotMove(_)
            | ApiError::SnapshotExists(_) => Status::Conflict,
            ApiError::SnapshotNotFound(_) => Status::NotFound,
            ApiError::BackupUnreadable(_) => Status::UnprocessableEntity,
            ApiError::BackupNotFound(_) => Status::NotFound,
            ApiError::BackupElsewhere(_) => Status::Conflict,
            ApiError::BackupUploadFailed(_) => Status::InternalServerError,
        }
    }

    /// The JSON body, `{"code": …, "message": …}`.
    pub fn body(&self) -> String {
        json!({ "code": self.code(), "message": self.to_string() }).to_string()
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Validation(errors) => ApiError::Validation(errors.to_string()),
            ServiceError::TemplateNotFound(name) => ApiError::TemplateNotFound { name, node: None },
            ServiceError::TemplateNotOnNode { template, node } => ApiError::TemplateNotFound {
                name: template,
                node: Some(node),
            },
            ServiceError::NameTaken(name) => ApiError::NameTaken(name),
            ServiceError::ContainerNotFound(id) => ApiError::ContainerNotFound(id),
            ServiceError::JobNotFound(id) => ApiError::JobNotFound(id),
            ServiceError::Refused { container, refusal } => {
                let why = ServiceError::Refused { container, refusal }.to_string();
                match refusal {
                    Refusal::BeingDeleted => ApiError::ContainerDeleting(why),
                    Refusal::CreateFailed => ApiError::ContainerFailed(why),
                    // Deleted containers are not found by the routes that
                    // name them; one deleted in between is not found either.
                    Refusal::Deleted => ApiError::ContainerNotFound(container.to_string()),
                }
            }
            error @ ServiceError::JobFinished { .. } => ApiError::JobFinished(error.to_string()),
            error @ ServiceError::JobNotCancellable { .. } => {
                ApiError::JobNotCancellable(error.to_string())
            }
            error @ ServiceError::TemplateInUse(_) => ApiError::TemplateInUse(error.to_string()),
            // Tokens are made and revoked with the CLI only: no route
            // reaches these, so they have no code of their own.
            error @ (ServiceError::TokenExists(_) | ServiceError::TokenNotFound(_)) => {
                ApiError::Internal(error.to_string())
            }
            ServiceError::IdempotencyKeyReused(key) => ApiError::IdempotencyKeyReused(key),
            ServiceError::Database(error) if error.is_unreachable() => {
                ApiError::DatabaseUnavailable(error.to_string())
            }
            ServiceError::Database(error) => ApiError::Internal(error.to_string()),
            ServiceError::ChangeNotPublished(why) => ApiError::Internal(why),
            ServiceError::NodeNotFound(name) => ApiError::NodeNotFound(name),
            error @ ServiceError::UnknownNode(_) => ApiError::UnknownNode(error.to_string()),
            error @ (ServiceError::NodeUnavailable { .. } | ServiceError::NoNodeAvailable) => {
                ApiError::NodeUnavailable(error.to_string())
            }
            error @ ServiceError::AlreadyOnNode { .. } => {
                ApiError::AlreadyOnNode(error.to_string())
            }
            error @ ServiceError::MovesOff => ApiError::MoveRefused(error.to_string()),
            // Raised only at start-up, which reports it itself.
            error @ ServiceError::NodeNameHeld { .. } => ApiError::Internal(error.to_string()),
            ServiceError::Templates(error) => error.into(),
            error @ ServiceError::NotRunning { .. } => {
                ApiError::ContainerNotRunning(error.to_string())
            }
            error @ ServiceError::OnOtherNode { .. } => {
                ApiError::ContainerOnOtherNode(error.to_string())
            }
            error @ ServiceError::TooManyTerminals { .. } => {
                ApiError::TooManyTerminals(error.to_string())
            }
            error @ ServiceError::AttachFailed(_) => ApiError::AttachFailed(error.to_string()),
            error @ ServiceError::UnknownPool(_) => ApiError::UnknownPool(error.to_string()),
            error @ ServiceError::PoolUnusable { .. } => ApiError::PoolUnusable(error.to_string()),
            error @ ServiceError::PoolCannotMove { .. } => {
                ApiError::PoolCannotMove(error.to_string())
            }
            error @ ServiceError::SnapshotNotFound { .. } => {
                ApiError::SnapshotNotFound(error.to_string())
            }
            error @ ServiceError::SnapshotExists { .. } => {
                ApiError::SnapshotExists(error.to_string())
            }
            ServiceError::BackupNotFound(id) => ApiError::BackupNotFound(id),
            ServiceError::BackupUnreadable(why) => ApiError::BackupUnreadable(why),
            error @ ServiceError::BackupElsewhere { .. } => {
                ApiError::BackupElsewhere(error.to_string())
            }
        }
    }
}

impl From<ArrivalError> for ApiError {
    fn from(error: ArrivalError) -> Self {
        match error {
            ArrivalError::ContainerNotFound(id) => ApiError::ContainerNotFound(id.to_string()),
            ArrivalError::NotMovingHere { .. } | ArrivalError::LivesHere { .. } => {
                ApiError::MoveRefused(error.to_string())
            }
            ArrivalError::InvalidParameters(_) | ArrivalError::Driver(_) => {
                ApiError::MoveFailed(error.to_string())
            }
            ArrivalError::Database(error) => ServiceError::Database(error).into(),
        }
    }
}

impl From<TemplateError> for ApiError {
    fn from(error: TemplateError) -> Self {
        match error {
            TemplateError::BadFileName(_) | TemplateError::WrongFormat(_) => {
                ApiError::Validation(error.to_string())
            }
            TemplateError::Exists(_) => ApiError::TemplateExists(error.to_string()),
            TemplateError::NotFound(name) => ApiError::TemplateMissing(name),
            TemplateError::Io(_) => ApiError::Internal(error.to_string()),
        }
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        // The edge: the one place an API failure is logged.
        match &self {
            ApiError::Internal(detail)
            | ApiError::MoveFailed(detail)
            | ApiError::AttachFailed(detail)
            | ApiError::BackupUploadFailed(detail) => {
                log::error!("{} {}: {detail}", request.method(), request.uri());
            }
            _ => {}
        }
        let body = self.body();
        let mut response = Response::build();
        response
            .status(self.status())
            .header(ContentType::JSON)
            .sized_body(body.len(), std::io::Cursor::new(body));
        match &self {
            ApiError::MethodNotAllowed { allowed, .. } => {
                response.header(Header::new("Allow", allowed.clone()));
            }
            ApiError::Unauthorized(_) => {
                response.header(Header::new("WWW-Authenticate", "Bearer realm=\"berth\""));
            }
            ApiError::TooManyAttempts(seconds) => {
                response.header(Header::new("Retry-After", seconds.to_string()));
            }
            _ => {}
        }
        response.ok()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
