//! EC2's error codes onto the typed provider errors, which drive the host's
//! failover: capacity blocks the zone, quota the region, auth the provider.

use aloft_sdk::ProviderError;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::fmt::Debug;

/// Whether an SDK error is the EC2 error `code`.
pub fn is_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>, code: &str) -> bool {
    e.code() == Some(code)
}

/// The typed error for an EC2 error code and message; `op` names the call.
pub fn classify(op: &str, code: &str, message: &str) -> ProviderError {
    let text = format!("{op}: {code}: {message}");
    match code {
        "InsufficientInstanceCapacity"
        | "InsufficientCapacity"
        | "InsufficientHostCapacity"
        | "InsufficientReservedInstanceCapacity"
        | "InsufficientCapacityOnHost"
        | "capacity-not-available"
        | "capacity-oversubscribed"
        | "SpotMaxPriceTooLow"
        // The instance type is not offered in the requested zone.
        | "Unsupported" => ProviderError::Capacity(text),
        "RequestLimitExceeded" | "Throttling" | "ThrottlingException" | "ServiceUnavailable" | "Unavailable"
        | "InternalError" | "InternalFailure" => ProviderError::Transient(text),
        "VcpuLimitExceeded" | "MaxSpotInstanceCountExceeded" | "InstanceLimitExceeded" | "PendingVerification" => {
            ProviderError::Quota(text)
        }
        c if c.ends_with("LimitExceeded") => ProviderError::Quota(text),
        "AuthFailure"
        | "UnauthorizedOperation"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "MissingAuthenticationToken"
        | "ExpiredToken"
        | "RequestExpired"
        | "OptInRequired"
        | "Blocked" => ProviderError::Auth(text),
        c if c.starts_with("AuthFailure") => ProviderError::Auth(text),
        "UnsupportedOperation" => ProviderError::Unsupported(text),
        c if c.ends_with(".NotFound") => ProviderError::NotFound(text),
        _ => ProviderError::Other(text),
    }
}

/// The typed error for a failed SDK call.
pub fn from_sdk<E, R>(op: &str, e: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug,
{
    if let Some(code) = e.code() {
        let message = e.message().unwrap_or("(no message)").to_string();
        return classify(op, code, &message);
    }
    let detail = DisplayErrorContext(&e).to_string();
    // The innermost cause says what happened ("ConnectionRefused", ...).
    let mut root: &dyn std::error::Error = &e;
    while let Some(next) = root.source() {
        root = next;
    }
    let cause = root.to_string();
    match &e {
        SdkError::DispatchFailure(_) if detail.contains("HttpRequestDenied") => ProviderError::Other(format!(
            "{op}: the host refused the request (endpoint not in this provider's egress list): {cause}"
        )),
        SdkError::TimeoutError(_) => ProviderError::Transient(format!("{op}: timed out: {detail}")),
        SdkError::DispatchFailure(d) if d.is_timeout() || d.is_io() => {
            ProviderError::Transient(format!("{op}: could not reach EC2: {cause}"))
        }
        SdkError::DispatchFailure(_) => ProviderError::Other(format!("{op}: could not reach EC2: {cause}")),
        _ => ProviderError::Other(format!("{op}: {detail}")),
    }
}
