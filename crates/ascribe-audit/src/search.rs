//! Inferences in a time window, filtered by caller, alias or checkpoint, a page at a time.
//!
//! Pages are keyed by `seq` (the cursor is the last `seq` of the previous page), so page
//! 10,000 costs what page 1 costs: one index range scan of at most `limit` rows.

use ascribe_store::query::read;
use ascribe_store::{Backend, SqlValue, StoreError};
use serde::Serialize;

use crate::window::seq_range;
use crate::{AuditError, Window};

/// The most rows one page may hold.
pub const MAX_PAGE: u32 = 1000;

/// Which inferences to list.
#[derive(Clone, Debug)]
pub struct InferenceQuery {
    /// The time window.
    pub window: Window,
    /// Only this caller key's inferences.
    pub caller: Option<String>,
    /// Only inferences through this alias.
    pub alias: Option<String>,
    /// Only inferences this checkpoint served.
    pub checkpoint: Option<String>,
    /// Only inferences that carry a decision reference.
    pub with_decision: bool,
    /// Start after this `seq` (the previous page's `next`).
    pub after: Option<u64>,
    /// Rows per page, 1 to [`MAX_PAGE`].
    pub limit: u32,
}

/// One inference as a flat row: the columns of the CSV export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InferenceRow {
    /// The inference id.
    pub inference_id: String,
    /// Its entry's `seq`.
    pub seq: u64,
    /// When it was recorded.
    pub time: String,
    /// The caller key's name.
    pub caller: String,
    /// The decision reference.
    pub decision: Option<String>,
    /// The model name the caller sent.
    pub requested_model: String,
    /// The alias it resolved as.
    pub alias: Option<String>,
    /// The deployment called.
    pub deployment: String,
    /// The checkpoint that served it.
    pub checkpoint: String,
    /// The model the provider said it served.
    pub served_model: Option<String>,
    /// The provider's fingerprint.
    pub system_fingerprint: Option<String>,
    /// `match`, `mismatch`, `undisclosed` or `none`.
    pub identity_match: String,
    /// The HTTP status released.
    pub status: u16,
    /// `answered` or what went wrong.
    pub outcome: String,
    /// Whether it was streamed.
    pub stream: bool,
    /// For streams: whether the stream ended normally; `None` until it ended, or when not
    /// streamed.
    pub completed: Option<bool>,
}

/// One page of inferences.
#[derive(Clone, Debug, Serialize)]
pub struct InferencePage {
    /// The rows, in ledger order.
    pub inferences: Vec<InferenceRow>,
    /// The cursor for the next page (`after`), or `None` on the last page.
    pub next: Option<u64>,
}

const COLUMNS: &str = "inference_id, seq, time, caller, decision, requested_model, alias, \
    deployment, checkpoint, served_model, system_fingerprint, identity_match, status, outcome, \
    stream, completed";

fn row(values: &[SqlValue]) -> Result<InferenceRow, StoreError> {
    let optional = |value: &SqlValue, column: &str| match value {
        SqlValue::Null => Ok(None),
        value => value.text(column).map(|text| Some(text.to_owned())),
    };
    Ok(InferenceRow {
        inference_id: values[0].text("inference_id")?.to_owned(),
        seq: values[1].count("seq")?,
        time: values[2].text("time")?.to_owned(),
        caller: values[3].text("caller")?.to_owned(),
        decision: optional(&values[4], "decision")?,
        requested_model: values[5].text("requested_model")?.to_owned(),
        alias: optional(&values[6], "alias")?,
        deployment: values[7].text("deployment")?.to_owned(),
        checkpoint: values[8].text("checkpoint")?.to_owned(),
        served_model: optional(&values[9], "served_model")?,
        system_fingerprint: optional(&values[10], "system_fingerprint")?,
        identity_match: values[11].text("identity_match")?.to_owned(),
        status: u16::try_from(values[12].count("status")?).unwrap_or(u16::MAX),
        outcome: values[13].text("outcome")?.to_owned(),
        stream: values[14].integer("stream")? != 0,
        completed: match &values[15] {
            SqlValue::Null => None,
            value => Some(value.integer("completed")? != 0),
        },
    })
}

/// One page of the inferences `query` asks for.
pub fn inferences(
    backend: &mut dyn Backend,
    query: &InferenceQuery,
) -> Result<InferencePage, AuditError> {
    if query.limit == 0 || query.limit > MAX_PAGE {
        return Err(AuditError::Invalid(format!(
            "a page holds 1 to {MAX_PAGE} inferences, not {}",
            query.limit
        )));
    }
    let (start, end) = read(backend, |tx| seq_range(tx, &query.window))?;
    let start = query.after.map_or(start, |after| start.max(after + 1));
    let filter = Filter {
        caller: query.caller.clone(),
        alias: query.alias.clone(),
        checkpoint: query.checkpoint.clone(),
        with_decision: query.with_decision,
    };
    let rows = filter.page(backend, start, end, query.limit)?;
    let next = (rows.len() == query.limit as usize)
        .then(|| rows.last().map(|row| row.seq))
        .flatten();
    Ok(InferencePage {
        inferences: rows,
        next,
    })
}

/// Row filters shared by the paginated query and the streamed exports.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    pub(crate) caller: Option<String>,
    pub(crate) alias: Option<String>,
    pub(crate) checkpoint: Option<String>,
    pub(crate) with_decision: bool,
}

impl Filter {
    /// Up to `limit` rows with `seq` in `[start, end)`, in `seq` order.
    pub(crate) fn page(
        &self,
        backend: &mut dyn Backend,
        start: u64,
        end: u64,
        limit: u32,
    ) -> Result<Vec<InferenceRow>, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let mut sql = format!("SELECT {COLUMNS} FROM inferences WHERE seq >= $1 AND seq < $2");
        let mut params: Vec<SqlValue> = vec![start.into(), end.into()];
        for (column, value) in [
            ("caller", &self.caller),
            ("alias", &self.alias),
            ("checkpoint", &self.checkpoint),
        ] {
            if let Some(value) = value {
                params.push(value.as_str().into());
                sql.push_str(&format!(" AND {column} = ${}", params.len()));
            }
        }
        if self.with_decision {
            sql.push_str(" AND decision IS NOT NULL");
        }
        params.push(u64::from(limit).into());
        sql.push_str(&format!(" ORDER BY seq LIMIT ${}", params.len()));
        read(backend, |tx| {
            tx.query(&sql, &params)?
                .iter()
                .map(|values| row(values))
                .collect()
        })
    }
}

/// The first (or, with `last`, the last) inference checkpoint `id` served.
pub(crate) fn edge_of_checkpoint(
    backend: &mut dyn Backend,
    id: &str,
    last: bool,
) -> Result<Option<InferenceRow>, StoreError> {
    let order = if last { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT {COLUMNS} FROM inferences WHERE checkpoint = $1 ORDER BY seq {order} LIMIT 1"
    );
    read(backend, |tx| {
        tx.query_row(&sql, &[id.into()])?
            .map(|values| row(&values))
            .transpose()
    })
}
