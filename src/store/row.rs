//! One column mapping per row type for both backends: rusqlite's and
//! tokio-postgres' rows both implement [`Row`], so a record type says once
//! ([`FromRow`]) which column holds which field, and a query of either
//! backend reads its rows with [`lite_rows`] or [`pg_rows`].

use super::StoreError;

/// A column type both backends decode.
pub(crate) trait Column:
    rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>
{
}

impl<T> Column for T where T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a> {}

/// A result row of either backend.
pub(crate) trait Row {
    /// Column `i`, as an error (not a panic) when its type is off.
    fn col<T: Column>(&self, i: usize) -> Result<T, StoreError>;
}

impl Row for rusqlite::Row<'_> {
    fn col<T: Column>(&self, i: usize) -> Result<T, StoreError> {
        Ok(self.get(i)?)
    }
}

impl Row for tokio_postgres::Row {
    fn col<T: Column>(&self, i: usize) -> Result<T, StoreError> {
        self.try_get(i).map_err(StoreError::Pg)
    }
}

/// A record read from one row, the same way for both backends.
pub(crate) trait FromRow: Sized {
    fn from_row(r: &impl Row) -> Result<Self, StoreError>;
}

impl FromRow for String {
    fn from_row(r: &impl Row) -> Result<Self, StoreError> {
        r.col(0)
    }
}

impl<A: Column, B: Column> FromRow for (A, B) {
    fn from_row(r: &impl Row) -> Result<Self, StoreError> {
        Ok((r.col(0)?, r.col(1)?))
    }
}

/// Every row of a prepared SQLite statement.
pub(crate) fn lite_rows<T: FromRow>(
    st: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<T>, StoreError> {
    let mut rows = st.query(params)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(T::from_row(r)?);
    }
    Ok(out)
}

/// Every row of a PostgreSQL answer.
pub(crate) fn pg_rows<T: FromRow>(rows: &[tokio_postgres::Row]) -> Result<Vec<T>, StoreError> {
    rows.iter().map(T::from_row).collect()
}
