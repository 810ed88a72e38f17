//! Query parameters given at most once. Taken as `Option<&str>`, a
//! parameter that is repeated (`?status=failed&status=failed`) reads as
//! absent, which would quietly drop a filter, a limit or a timeout; so
//! handlers take every value (`Param`) and pass them through `at_most_once`.

use crate::error::ApiError;

/// How a handler takes a query parameter: every value it was given.
pub type Param<'r> = Vec<&'r str>;

/// The parameter's value if it was given once, `None` if not given, and an
/// error in the API's shape if it was given more than once.
pub fn at_most_once<'r>(name: &str, values: Param<'r>) -> Result<Option<&'r str>, ApiError> {
    match values[..] {
        [] => Ok(None),
        [value] => Ok(Some(value)),
        _ => Err(ApiError::Validation(format!(
            "{name}: given {} times; give it at most once",
            values.len()
        ))),
    }
}

/// The choice among `all` whose name is `raw`; an error listing the
/// choices otherwise.
pub fn one_of<T: Copy>(
    field: &str,
    raw: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, ApiError> {
    all.iter()
        .copied()
        .find(|choice| name(*choice) == raw)
        .ok_or_else(|| {
            let known: Vec<_> = all.iter().map(|choice| name(*choice)).collect();
            ApiError::Validation(format!("{field}: must be one of {}", known.join(", ")))
        })
}

#[cfg(test)]
mod tests {
    use super::at_most_once;

    #[test]
    fn one_value_or_none_but_never_a_silent_choice() {
        assert_eq!(at_most_once("limit", vec![]).unwrap(), None);
        assert_eq!(at_most_once("limit", vec!["5"]).unwrap(), Some("5"));
        let error = at_most_once("limit", vec!["5", "6"]).unwrap_err();
        assert_eq!(error.code(), 1002);
        assert!(
            error.to_string().starts_with("limit: given 2 times"),
            "{error}"
        );
    }
}
