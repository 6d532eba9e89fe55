//! One way to run a statement on either backend. Every query of the store is
//! written once, with `$1`-style parameters that PostgreSQL and SQLite both
//! read; values and columns are any type both drivers encode and decode. This
//! keeps a single copy of the SQL instead of one per database.

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{Database, Decode, Encode, PgPool, Postgres, Row as _, Sqlite, SqlitePool, Type};

use crate::model::Ts;

/// A value both drivers can bind.
pub trait Value:
    for<'q> Encode<'q, Postgres> + Type<Postgres> + for<'q> Encode<'q, Sqlite> + Type<Sqlite> + Send
{
}
impl<T> Value for T where
    T: for<'q> Encode<'q, Postgres> + Type<Postgres> + for<'q> Encode<'q, Sqlite> + Type<Sqlite> + Send
{
}

/// A column type both drivers can decode.
pub trait Column: for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite> {}
impl<T> Column for T where T: for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite> {}

/// Which database a pool talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// How statements reach PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooler {
    /// Each connection of ours is a server connection of its own: a statement
    /// is prepared once per connection, under a name, and reused.
    Direct,
    /// Through PgBouncer in transaction mode, where a server connection is ours
    /// only until the transaction ends. Statements are unnamed (a name prepared
    /// on one server connection means nothing on the next one), and a statement
    /// outside a transaction runs in one of its own: sqlx parses and executes a
    /// statement in two exchanges, which PgBouncer could send to two servers.
    Bouncer,
}

/// A connection pool of either backend.
#[derive(Clone, Debug)]
pub enum Db {
    Pg(PgPool, Pooler),
    Lite(SqlitePool),
}

/// An open transaction of either backend.
pub enum Tx {
    Pg(sqlx::Transaction<'static, Postgres>, Pooler),
    Lite(sqlx::Transaction<'static, Sqlite>),
}

type PgQuery = sqlx::query::Query<'static, Postgres, <Postgres as Database>::Arguments>;
type LiteQuery = sqlx::query::Query<'static, Sqlite, <Sqlite as Database>::Arguments>;

enum Target<'a> {
    PgPool(&'a PgPool, Pooler),
    PgConn(&'a mut PgConnection),
    LitePool(&'a SqlitePool),
    LiteConn(&'a mut SqliteConnection),
}

enum Statement {
    Pg(PgQuery),
    Lite(LiteQuery),
}

/// A statement with its bound values, ready to run.
pub struct Sql<'a> {
    target: Target<'a>,
    statement: Statement,
}

/// A result row of either backend.
pub enum Row {
    Pg(PgRow),
    Lite(SqliteRow),
}

/// A PostgreSQL statement, named and kept only when no pooler sits between.
fn pg_query(text: impl sqlx::SqlSafeStr, pooler: Pooler) -> PgQuery {
    sqlx::query(text).persistent(pooler == Pooler::Direct)
}

impl Db {
    pub fn backend(&self) -> Backend {
        match self {
            Db::Pg(..) => Backend::Postgres,
            Db::Lite(_) => Backend::Sqlite,
        }
    }

    /// A statement run on a pooled connection, outside any transaction.
    pub fn sql(&self, text: &'static str) -> Sql<'_> {
        match self {
            Db::Pg(pool, pooler) => {
                Sql { target: Target::PgPool(pool, *pooler), statement: Statement::Pg(pg_query(text, *pooler)) }
            }
            Db::Lite(pool) => Sql { target: Target::LitePool(pool), statement: Statement::Lite(sqlx::query(text)) },
        }
    }

    /// A statement whose text is built at run time, on a pooled connection
    /// (a number of placeholders, never a value: values are always bound).
    pub fn sql_built(&self, text: String) -> Sql<'_> {
        match self {
            Db::Pg(pool, pooler) => Sql {
                target: Target::PgPool(pool, *pooler),
                statement: Statement::Pg(pg_query(sqlx::AssertSqlSafe(text), *pooler)),
            },
            Db::Lite(pool) => Sql {
                target: Target::LitePool(pool),
                statement: Statement::Lite(sqlx::query(sqlx::AssertSqlSafe(text))),
            },
        }
    }

    /// Opens a writing transaction: SERIALIZABLE on PostgreSQL, and on SQLite
    /// `BEGIN IMMEDIATE`, which takes the write lock up front.
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Pg(pool, pooler) => Tx::Pg(begin_pg(pool, "BEGIN ISOLATION LEVEL SERIALIZABLE").await?, *pooler),
            Db::Lite(pool) => Tx::Lite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// Opens a point-moving transaction in the write lane (PostgreSQL: the
    /// writers of every instance take turns there, see `gate`; SQLite has one
    /// writer anyway).
    pub async fn begin_write_in_lane(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Pg(pool, pooler) => Tx::Pg(begin_pg(pool, super::gate::BEGIN_IN_LANE).await?, *pooler),
            Db::Lite(pool) => Tx::Lite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// Opens a transaction that relies on explicit locks rather than on its
    /// snapshot: READ COMMITTED on PostgreSQL, so each statement sees what
    /// committed while it waited for a lock; `BEGIN IMMEDIATE` on SQLite.
    pub async fn begin_locking(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Pg(pool, pooler) => Tx::Pg(begin_pg(pool, "BEGIN").await?, *pooler),
            Db::Lite(pool) => Tx::Lite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    pub async fn close(&self) {
        match self {
            Db::Pg(pool, _) => pool.close().await,
            Db::Lite(pool) => pool.close().await,
        }
    }
}

/// Opens a PostgreSQL transaction with `statement` on a task of its own, so
/// that a caller who gives up while it waits (a client gone, a timeout)
/// cannot leave a connection in the pool inside an open transaction. sqlx
/// counts a transaction only once its BEGIN has answered, so a BEGIN
/// abandoned while it waited (the write lane's `LOCK TABLE` may wait long)
/// went back to the pool still open, holding the lane: every writer of
/// every instance then waited on it for good, and the next user of the
/// connection ran inside it. The task sees the BEGIN through; a transaction
/// nobody is left to take is dropped there, which rolls it back. (SQLite's
/// driver rolls an unacknowledged BEGIN back itself.)
async fn begin_pg(pool: &PgPool, statement: &'static str) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
    let pool = pool.clone();
    tokio::spawn(async move { pool.begin_with(statement).await })
        .await
        .map_err(|error| sqlx::Error::Io(std::io::Error::other(error)))?
}

impl Tx {
    pub fn backend(&self) -> Backend {
        match self {
            Tx::Pg(..) => Backend::Postgres,
            Tx::Lite(_) => Backend::Sqlite,
        }
    }

    /// A statement whose text is built at run time (a number of rows or
    /// placeholders, never a value: values are always bound).
    pub fn sql_built(&mut self, text: String) -> Sql<'_> {
        match self {
            Tx::Pg(tx, pooler) => Sql {
                target: Target::PgConn(tx),
                statement: Statement::Pg(pg_query(sqlx::AssertSqlSafe(text), *pooler)),
            },
            Tx::Lite(tx) => {
                Sql { target: Target::LiteConn(tx), statement: Statement::Lite(sqlx::query(sqlx::AssertSqlSafe(text))) }
            }
        }
    }

    /// A statement run inside this transaction.
    pub fn sql(&mut self, text: &'static str) -> Sql<'_> {
        match self {
            Tx::Pg(tx, pooler) => Sql { target: Target::PgConn(tx), statement: Statement::Pg(pg_query(text, *pooler)) },
            Tx::Lite(tx) => Sql { target: Target::LiteConn(tx), statement: Statement::Lite(sqlx::query(text)) },
        }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Pg(tx, _) => tx.commit().await,
            Tx::Lite(tx) => tx.commit().await,
        }
    }
}

/// Runs the same call on whichever target and statement the `Sql` holds, and
/// turns the driver's result into ours.
macro_rules! run {
    ($sql:expr, $method:ident) => {{
        let Sql { target, statement } = $sql;
        match (target, statement) {
            (Target::PgPool(pool, Pooler::Direct), Statement::Pg(q)) => q.$method(pool).await.map(Wrap::wrap),
            (Target::PgPool(pool, Pooler::Bouncer), Statement::Pg(q)) => {
                let mut tx = pool.begin().await?;
                let result = q.$method(&mut *tx).await.map(Wrap::wrap)?;
                tx.commit().await?;
                Ok(result)
            }
            (Target::PgConn(conn), Statement::Pg(q)) => q.$method(&mut *conn).await.map(Wrap::wrap),
            (Target::LitePool(pool), Statement::Lite(q)) => q.$method(pool).await.map(Wrap::wrap),
            (Target::LiteConn(conn), Statement::Lite(q)) => q.$method(&mut *conn).await.map(Wrap::wrap),
            _ => unreachable!("a statement is always made for its own backend"),
        }
    }};
}

impl Sql<'_> {
    pub fn bind<T: Value>(mut self, value: T) -> Self {
        self.statement = match self.statement {
            Statement::Pg(q) => Statement::Pg(q.bind(value)),
            Statement::Lite(q) => Statement::Lite(q.bind(value)),
        };
        self
    }

    pub async fn fetch_one(self) -> Result<Row, sqlx::Error> {
        run!(self, fetch_one)
    }

    pub async fn fetch_optional(self) -> Result<Option<Row>, sqlx::Error> {
        run!(self, fetch_optional)
    }

    pub async fn fetch_all(self) -> Result<Vec<Row>, sqlx::Error> {
        run!(self, fetch_all)
    }

    /// Runs the statement and returns how many rows it changed.
    pub async fn execute(self) -> Result<u64, sqlx::Error> {
        run!(self, execute)
    }
}

/// A driver's result, in our backend-neutral form.
trait Wrap<T> {
    fn wrap(self) -> T;
}
impl Wrap<Row> for PgRow {
    fn wrap(self) -> Row {
        Row::Pg(self)
    }
}
impl Wrap<Row> for SqliteRow {
    fn wrap(self) -> Row {
        Row::Lite(self)
    }
}
impl<R: Wrap<Row>> Wrap<Option<Row>> for Option<R> {
    fn wrap(self) -> Option<Row> {
        self.map(Wrap::wrap)
    }
}
impl<R: Wrap<Row>> Wrap<Vec<Row>> for Vec<R> {
    fn wrap(self) -> Vec<Row> {
        self.into_iter().map(Wrap::wrap).collect()
    }
}
impl Wrap<u64> for sqlx::postgres::PgQueryResult {
    fn wrap(self) -> u64 {
        self.rows_affected()
    }
}
impl Wrap<u64> for sqlx::sqlite::SqliteQueryResult {
    fn wrap(self) -> u64 {
        self.rows_affected()
    }
}

impl Row {
    /// The column named `name`, decoded as `T`.
    pub fn get<T: Column>(&self, name: &str) -> Result<T, sqlx::Error> {
        match self {
            Row::Pg(row) => row.try_get(name),
            Row::Lite(row) => row.try_get(name),
        }
    }
}

// `Ts` is `timestamptz` on PostgreSQL and integer microseconds since the
// epoch on SQLite, so that it sorts and compares right on both (SQLite's text
// timestamps vary in length and do not).

type BoxDynError = sqlx::error::BoxDynError;

impl Type<Postgres> for Ts {
    fn type_info() -> <Postgres as Database>::TypeInfo {
        <time::OffsetDateTime as Type<Postgres>>::type_info()
    }
}
impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, BoxDynError> {
        Encode::<Postgres>::encode_by_ref(&self.0, buf)
    }
}
impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        // PostgreSQL keeps microseconds; the value read back is the value written.
        Ok(Ts(<time::OffsetDateTime as Decode<Postgres>>::decode(value)?))
    }
}
impl Type<Sqlite> for Ts {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }
}
impl Encode<'_, Sqlite> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, BoxDynError> {
        Encode::<Sqlite>::encode_by_ref(&self.micros(), buf)
    }
}
impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let micros = <i64 as Decode<Sqlite>>::decode(value)?;
        Ts::from_micros(micros).ok_or_else(|| format!("a time out of range: {micros}").into())
    }
}

impl Tx {
    /// Runs a script of several statements, such as a migration.
    pub async fn raw(&mut self, script: &'static str) -> Result<(), sqlx::Error> {
        match self {
            Tx::Pg(tx, _) => sqlx::raw_sql(script).execute(&mut **tx).await.map(|_| ()),
            Tx::Lite(tx) => sqlx::raw_sql(script).execute(&mut **tx).await.map(|_| ()),
        }
    }
}

/// `count` placeholders `$first, $first+1, …`, comma-separated: for `IN (…)`.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// `rows` tuples of `width` placeholders numbered from `first`: for a
/// multi-row `VALUES` list.
pub fn value_rows(first: usize, rows: usize, width: usize) -> String {
    (0..rows).map(|row| format!("({})", placeholders(first + row * width, width))).collect::<Vec<_>>().join(", ")
}

/// A list of rows handed to a statement as one relation, `v(column1, …)`.
/// On PostgreSQL each column is one array parameter read by `unnest`, so the
/// statement's text is the same whatever the number of rows: it is prepared
/// and planned once per connection, and its values cost one parameter per
/// column instead of one per value. On SQLite (in-process, where a statement
/// costs no round trip) it is a `VALUES` list.
pub struct Rows {
    count: usize,
    columns: Vec<Cells>,
}

/// One column of a `Rows`.
pub enum Cells {
    Uuid(Vec<uuid::Uuid>),
    MaybeUuid(Vec<Option<uuid::Uuid>>),
    Int(Vec<i64>),
    MaybeInt(Vec<Option<i64>>),
    Text(Vec<String>),
    Time(Vec<time::OffsetDateTime>),
    /// JSON documents as text (`jsonb` on PostgreSQL), or none.
    Json(Vec<Option<String>>),
    Bytes(Vec<Vec<u8>>),
}

impl Cells {
    fn array_type(&self) -> &'static str {
        match self {
            Cells::Uuid(_) | Cells::MaybeUuid(_) => "uuid[]",
            Cells::Int(_) | Cells::MaybeInt(_) => "bigint[]",
            Cells::Text(_) => "text[]",
            Cells::Time(_) => "timestamptz[]",
            Cells::Json(_) => "jsonb[]",
            Cells::Bytes(_) => "bytea[]",
        }
    }

    /// The whole column as one PostgreSQL array.
    fn bind_array(self, query: PgQuery) -> PgQuery {
        match self {
            Cells::Uuid(values) => query.bind(values),
            Cells::MaybeUuid(values) => query.bind(values),
            Cells::Int(values) => query.bind(values),
            Cells::MaybeInt(values) => query.bind(values),
            Cells::Text(values) => query.bind(values),
            Cells::Time(values) => query.bind(values),
            Cells::Json(values) => query.bind(values),
            Cells::Bytes(values) => query.bind(values),
        }
    }

    /// The value of row `row`, as one SQLite parameter.
    fn bind_one(&self, row: usize, query: LiteQuery) -> LiteQuery {
        match self {
            Cells::Uuid(values) => query.bind(values[row]),
            Cells::MaybeUuid(values) => query.bind(values[row]),
            Cells::Int(values) => query.bind(values[row]),
            Cells::MaybeInt(values) => query.bind(values[row]),
            Cells::Text(values) => query.bind(values[row].clone()),
            Cells::Time(values) => query.bind(Ts(values[row])),
            Cells::Json(values) => query.bind(values[row].clone()),
            Cells::Bytes(values) => query.bind(values[row].clone()),
        }
    }
}

/// A value that can stand in a column of `Rows`.
pub trait Cell {
    fn column(capacity: usize) -> Cells;
    fn push_to(self, column: &mut Cells);
}

macro_rules! cell {
    ($type:ty, $variant:ident, $value:ident => $stored:expr) => {
        impl Cell for $type {
            fn column(capacity: usize) -> Cells {
                Cells::$variant(Vec::with_capacity(capacity))
            }
            fn push_to(self, column: &mut Cells) {
                if let Cells::$variant(values) = column {
                    let $value = self;
                    values.push($stored);
                }
            }
        }
    };
}
cell!(uuid::Uuid, Uuid, v => v);
cell!(Option<uuid::Uuid>, MaybeUuid, v => v);
cell!(i64, Int, v => v);
cell!(Option<i64>, MaybeInt, v => v);
cell!(String, Text, v => v);
cell!(Ts, Time, v => v.0);
cell!(Vec<u8>, Bytes, v => v);

/// A JSON document for a `jsonb` column (text on SQLite), or none.
pub struct JsonCell(pub Option<serde_json::Value>);
cell!(JsonCell, Json, v => v.0.map(|json| json.to_string()));

/// A tuple that is one row of `Rows`.
pub trait RowOf {
    fn columns(capacity: usize) -> Vec<Cells>;
    fn push_to(self, columns: &mut [Cells]);
}

macro_rules! row_of {
    ($($name:ident $index:tt),+) => {
        impl<$($name: Cell),+> RowOf for ($($name,)+) {
            fn columns(capacity: usize) -> Vec<Cells> {
                vec![$($name::column(capacity)),+]
            }
            fn push_to(self, columns: &mut [Cells]) {
                $(self.$index.push_to(&mut columns[$index]);)+
            }
        }
    };
}
row_of!(A 0);
row_of!(A 0, B 1);
row_of!(A 0, B 1, C 2);
row_of!(A 0, B 1, C 2, D 3);
row_of!(A 0, B 1, C 2, D 3, E 4);
row_of!(A 0, B 1, C 2, D 3, E 4, F 5);
row_of!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
row_of!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
row_of!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
row_of!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);

impl Rows {
    pub fn of<R: RowOf>(rows: impl ExactSizeIterator<Item = R>) -> Rows {
        let count = rows.len();
        let mut columns = R::columns(count);
        for row in rows {
            row.push_to(&mut columns);
        }
        Rows { count, columns }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The relation `v(column1, …)` for `FROM`, its parameters numbered from `first`.
    pub fn relation(&self, backend: Backend, first: usize) -> String {
        let width = self.columns.len();
        match backend {
            Backend::Postgres => {
                let arrays: Vec<String> = self
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("${}::{}", first + i, c.array_type()))
                    .collect();
                let names: Vec<String> = (1..=width).map(|i| format!("column{i}")).collect();
                format!("unnest({}) AS v({})", arrays.join(", "), names.join(", "))
            }
            Backend::Sqlite => format!("(VALUES {}) AS v", value_rows(first, self.count, width)),
        }
    }

    /// How many parameters the relation takes.
    pub fn parameters(&self, backend: Backend) -> usize {
        match backend {
            Backend::Postgres => self.columns.len(),
            Backend::Sqlite => self.columns.len() * self.count,
        }
    }
}

impl Sql<'_> {
    /// Binds the parameters of `rows.relation(..)`, in its place among the others.
    pub fn bind_rows(mut self, rows: Rows) -> Self {
        self.statement = match self.statement {
            Statement::Pg(mut query) => {
                for column in rows.columns {
                    query = column.bind_array(query);
                }
                Statement::Pg(query)
            }
            Statement::Lite(mut query) => {
                for row in 0..rows.count {
                    for column in &rows.columns {
                        query = column.bind_one(row, query);
                    }
                }
                Statement::Lite(query)
            }
        };
        self
    }
}

/// Statements that change rows, each from its `Rows` (named `{rows}` in its
/// text), and read nothing back. On PostgreSQL they run as one statement of
/// data-modifying `WITH` parts: one round trip and one plan for them all.
/// Every part then sees the rows as they were before any part ran, so no
/// part may depend on another's change (nor two parts touch one row). On
/// SQLite they run one after the other.
#[derive(Default)]
pub struct Writes {
    parts: Vec<(&'static str, Rows)>,
}

impl Writes {
    /// Adds a statement; one whose rows are none is left out.
    pub fn add(&mut self, text: &'static str, rows: Rows) {
        if !rows.is_empty() {
            self.parts.push((text, rows));
        }
    }

    pub async fn run(self, tx: &mut Tx) -> Result<(), sqlx::Error> {
        match tx.backend() {
            Backend::Postgres if !self.parts.is_empty() => {
                let mut next = 1;
                let mut withs = Vec::with_capacity(self.parts.len());
                for (i, (text, rows)) in self.parts.iter().enumerate() {
                    withs
                        .push(format!("w{i} AS ({})", text.replace("{rows}", &rows.relation(Backend::Postgres, next))));
                    next += rows.parameters(Backend::Postgres);
                }
                let mut statement = tx.sql_built(format!("WITH {} SELECT 1", withs.join(", ")));
                for (_, rows) in self.parts {
                    statement = statement.bind_rows(rows);
                }
                statement.execute().await?;
            }
            _ => {
                for (text, rows) in self.parts {
                    let sql = text.replace("{rows}", &rows.relation(Backend::Sqlite, 1));
                    tx.sql_built(sql).bind_rows(rows).execute().await?;
                }
            }
        }
        Ok(())
    }
}
