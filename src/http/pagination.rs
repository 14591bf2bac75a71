//! Cursor pagination: `?limit=&cursor=` → `{items, next_cursor}`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiError;

/// Query parameters of every list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    /// Items per page, 1–100 (default 20).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A validated page request. `cursor` is the id the page continues from: items below it for
/// newest-first lists, above it for oldest-first ones.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub limit: i64,
    pub cursor: Option<i64>,
}

impl PageQuery {
    /// Checks the limit (1–100, default 20) and decodes the cursor.
    pub fn validate(&self) -> Result<PageRequest, ApiError> {
        self.validate_with(20, 100)
    }

    /// Checks the limit (1–`max`, default `default`) and decodes the cursor.
    pub fn validate_with(&self, default: i64, max: i64) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(default);
        if !(1..=max).contains(&limit) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("limit must be between 1 and {max}"),
            ));
        }
        let cursor = match &self.cursor {
            None => None,
            Some(c) => Some(
                c.parse::<i64>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| ApiError::bad_request("invalid_cursor", "invalid cursor"))?,
            ),
        };
        Ok(PageRequest { limit, cursor })
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched newest first.
    pub fn from_rows(mut rows: Vec<T>, req: PageRequest, id: impl Fn(&T) -> i64) -> Self {
        let next_cursor = if rows.len() as i64 > req.limit {
            rows.truncate(req.limit as usize);
            rows.last().map(|r| id(r).to_string())
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}
