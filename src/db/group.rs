//! Group commit for charger messages.
//!
//! One message, one transaction, one commit was the ceiling: a commit costs an fsync (SQLite's
//! WAL) or a WAL flush and a round trip (PostgreSQL), and thousands of chargers each waiting
//! for their own commit queue behind each other. Here every connection hands its message's
//! work to one writer, which applies what arrived within a short window (or up to a batch
//! size) in ONE transaction and answers each message only after that commit, so an
//! acknowledgement is as durable as before.
//!
//! - A batch runs first as one plain transaction (no per-message savepoint: on PostgreSQL
//!   that saves two round trips per message). Should any message fail (an error, or a bug
//!   that panics), the batch is rolled back and run again with each message in its own
//!   savepoint: the failing one is rolled back alone and answered with its error, the others
//!   commit. A message's work may therefore run twice, but only one run ever commits.
//! - Order: a writer applies messages in arrival order, every message of one charger goes to
//!   the same writer (the charger's id picks it), and a charger sends its next call only after
//!   the answer to the previous one, so one charger's messages keep their order.
//! - Several writers on PostgreSQL (`Settings::writers`, default 4): a batch spends most of
//!   its time in round trips to the server, so a few writers, each with its own connection and
//!   batches, overlap them; chargers are spread over them by id. SQLite has one writer at a
//!   time whatever the count, so it always gets one.
//! - Should a whole batch fail (its commit, or a savepoint that cannot be rolled back), every
//!   message in it is
//!   answered with an error (the charger retries), and the next messages run one transaction
//!   each until a batch's worth went through, so one poisonous message cannot keep failing
//!   the others.
//! - Fair share: the writer has its own connection, outside the pool the API uses, so charger
//!   writes never wait for a pooled connection and the API never waits for the writer's. On
//!   SQLite, where one writer holds the file at a time, a batch takes its turn at the write
//!   lock in arrival order with the API's writes ([`Db::sqlite_write_turn`]).
//! - The queue is unbounded on purpose: each charger has at most one message in it (it waits
//!   for the answer), so its length is bounded by the number of connections.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{write_tx, Db, DbConn};
use crate::http::error::ApiError;

/// How batches are formed.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long the writer waits for more messages after the first of a batch.
    pub window: Duration,
    /// The most messages in one transaction.
    pub max_batch: usize,
    /// Writers (connections) on PostgreSQL; always one on SQLite.
    pub writers: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            window: Duration::from_millis(2),
            max_batch: 256,
            writers: 4,
        }
    }
}

/// Counters of the writer (for `/metrics` and tests).
#[derive(Debug, Default)]
pub struct Stats {
    batches: AtomicU64,
    messages: AtomicU64,
    failed_batches: AtomicU64,
    queued: AtomicUsize,
}

impl Stats {
    /// Transactions committed.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Messages applied in committed transactions (including those whose own work failed).
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    /// Batches that did not commit.
    pub fn failed_batches(&self) -> u64 {
        self.failed_batches.load(Ordering::Relaxed)
    }

    /// Messages waiting for the writer.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// A message's work, type-erased for the queue.
trait Job: Send {
    /// Runs the work straight in the batch's transaction, without a savepoint of its own;
    /// `false` when it failed (the batch is then rolled back and run again with savepoints).
    fn apply_plain(&mut self, conn: &mut DbConn) -> bool;
    /// Runs the work in a savepoint of the batch's transaction. An error here means the
    /// transaction itself is unusable (a savepoint could not be rolled back): the batch fails.
    fn apply(&mut self, conn: &mut DbConn) -> diesel::QueryResult<()>;
    /// Answers the message: its own result if the batch committed, else an error.
    fn finish(self: Box<Self>, committed: bool);
}

struct Typed<T, F> {
    work: F,
    result: Option<Result<T, ApiError>>,
    reply: oneshot::Sender<Result<T, ApiError>>,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send,
    F: FnMut(&mut DbConn) -> Result<T, ApiError> + Send,
{
    fn apply_plain(&mut self, conn: &mut DbConn) -> bool {
        // A panic unwinds to the writer, which drops the connection (rolling everything back)
        // and runs the batch again with savepoints.
        match (self.work)(conn) {
            Ok(v) => {
                self.result = Some(Ok(v));
                true
            }
            Err(_) => false,
        }
    }

    fn apply(&mut self, conn: &mut DbConn) -> diesel::QueryResult<()> {
        use diesel::connection::TransactionManager;
        let work = &mut self.work;
        match catch_unwind(AssertUnwindSafe(|| conn.transaction(|conn| work(conn)))) {
            Ok(result) => self.result = Some(result),
            Err(_) => {
                // The panic unwound past the savepoint diesel opened for this message: roll
                // back that savepoint alone, so the others in the batch still commit.
                tracing::error!("a charger message panicked; it alone is rolled back");
                <DbConn as Connection>::TransactionManager::rollback_transaction(conn)?;
                self.result = Some(Err(ApiError::Internal(
                    "a charger message's work panicked".into(),
                )));
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>, committed: bool) {
        let answer = match (committed, self.result) {
            (true, Some(result)) => result,
            _ => Err(ApiError::Unavailable(
                "the charger message was not stored; retry".into(),
            )),
        };
        // The connection may have gone away meanwhile; nobody is left to answer.
        let _ = self.reply.send(answer);
    }
}

/// The writers' handle: cheap to share, one per process (and database).
pub struct GroupWriter {
    shards: Vec<Shard>,
    stats: Arc<Stats>,
}

/// One writer: its queue, its pause switch for tests, and its thread.
struct Shard {
    queue: mpsc::UnboundedSender<Box<dyn Job>>,
    hold: Arc<tokio::sync::Mutex<()>>,
    /// Held here when no runtime holds it (see [`GroupWriter::start`]).
    _lifeline: Option<Lifeline>,
}

/// Stops the writer thread and waits for it when dropped.
struct Lifeline {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Lifeline {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // The writer finishes the batch in flight (milliseconds), then ends.
            let _ = thread.join();
        }
    }
}

impl GroupWriter {
    /// Starts the writers (one on SQLite, `settings.writers` on PostgreSQL), each on a thread
    /// of its own (see [`Shard::start`] for when they end).
    pub fn start(db: Db, settings: Settings) -> GroupWriter {
        let stats = Arc::new(Stats::default());
        let writers = match db.backend() {
            super::Backend::Sqlite => 1,
            super::Backend::Postgres => settings.writers.max(1),
        };
        let shards = (0..writers)
            .map(|i| Shard::start(i, db.clone(), settings, stats.clone()))
            .collect();
        GroupWriter { shards, stats }
    }

    /// Applies `work` in the next batch of the writer that serves `charger` (every message of
    /// one charger goes to the same writer, in order) and returns its result after that batch
    /// committed.
    ///
    /// `work` may run twice (it is `FnMut`): a batch first runs without a savepoint per
    /// message, and only when one of its messages fails is it rolled back and run again with
    /// one; the answer is always from the run that committed.
    pub async fn submit<T, F>(&self, charger: &str, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnMut(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Typed {
            work,
            result: None,
            reply,
        });
        let shard = &self.shards[self.writer_of(charger)];
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if shard.queue.send(job).is_err() {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(ApiError::Unavailable(
                "the charger writer has stopped".into(),
            ));
        }
        answer
            .await
            .map_err(|_| ApiError::Unavailable("the charger writer has stopped".into()))?
    }

    /// The writer's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// How many writers there are.
    pub fn writers(&self) -> usize {
        self.shards.len()
    }

    /// Which writer serves a charger (stable for the life of the process).
    pub fn writer_of(&self, charger: &str) -> usize {
        use std::hash::{BuildHasher, BuildHasherDefault};
        if self.shards.len() == 1 {
            return 0;
        }
        // A fixed-key hasher: the same charger maps to the same writer on every call.
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(charger);
        (hash % self.shards.len() as u64) as usize
    }

    /// Pauses every writer before its next batch until the guards are dropped (tests use it
    /// to gather several messages into one batch without depending on timing).
    pub async fn hold(&self) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        let mut guards = Vec::with_capacity(self.shards.len());
        for shard in &self.shards {
            guards.push(shard.hold.clone().lock_owned().await);
        }
        guards
    }
}

impl Shard {
    /// Starts a writer on a thread of its own (its connection is opened on first use).
    ///
    /// The thread ends when the handle is dropped, or, when started inside a Tokio runtime,
    /// when that runtime shuts down: then the runtime's shutdown waits for the batch in
    /// flight and the writer's connection to close, so no charger write runs on after the
    /// runtime that served the chargers (a test's, or the server's) has ended.
    fn start(index: usize, db: Db, settings: Settings, stats: Arc<Stats>) -> Shard {
        let (queue, jobs) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel();
        let hold = Arc::new(tokio::sync::Mutex::new(()));
        let writer = Writer {
            db,
            settings,
            stats,
            hold: hold.clone(),
            conn: None,
            solo_left: 0,
        };
        let thread = std::thread::Builder::new()
            .name(format!("charger-writer-{index}"))
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                {
                    Ok(rt) => rt.block_on(writer.run(jobs, stopped)),
                    Err(e) => tracing::error!(error = %e, "the charger writer cannot start"),
                }
            })
            .expect("spawn the charger writer thread");
        let lifeline = Lifeline {
            stop: Some(stop),
            thread: Some(thread),
        };
        let lifeline = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let _lifeline = lifeline;
                    std::future::pending::<()>().await;
                });
                None
            }
            Err(_) => Some(lifeline),
        };
        Shard {
            queue,
            hold,
            _lifeline: lifeline,
        }
    }
}

/// How the fast path of a batch ended.
enum Plain {
    Committed,
    /// The commit failed: the batch fails.
    Failed,
    /// A message failed: run the batch again, each message in a savepoint.
    Retry,
}

/// Why the fast path's transaction was rolled back.
enum Again {
    Retry,
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for Again {
    fn from(e: diesel::result::Error) -> Again {
        Again::Db(e)
    }
}

struct Writer {
    db: Db,
    settings: Settings,
    stats: Arc<Stats>,
    hold: Arc<tokio::sync::Mutex<()>>,
    conn: Option<DbConn>,
    /// Messages still to run one per transaction after a batch failed.
    solo_left: usize,
}

impl Writer {
    async fn run(
        mut self,
        mut jobs: mpsc::UnboundedReceiver<Box<dyn Job>>,
        mut stopped: oneshot::Receiver<()>,
    ) {
        loop {
            let first = tokio::select! {
                biased;
                _ = &mut stopped => break,
                job = jobs.recv() => match job {
                    Some(job) => job,
                    None => break,
                },
            };
            let held = self.hold.clone();
            let _held = held.lock().await;
            let max = if self.solo_left > 0 {
                self.solo_left -= 1;
                1
            } else {
                self.settings.max_batch.max(1)
            };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + self.settings.window;
            while batch.len() < max {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(mpsc::error::TryRecvError::Empty) => {
                        match tokio::time::timeout_at(deadline, jobs.recv()).await {
                            Ok(Some(job)) => batch.push(job),
                            Ok(None) | Err(_) => break,
                        }
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
            }
            self.stats.queued.fetch_sub(batch.len(), Ordering::Relaxed);
            let _turn = self.db.sqlite_write_turn().await;
            self.apply(batch);
        }
    }

    /// Applies a batch in one transaction and answers: first without savepoints, and when a
    /// message fails, again with each message in its own savepoint.
    fn apply(&mut self, mut batch: Vec<Box<dyn Job>>) {
        if !self.connect() {
            return self.fail(batch);
        }
        match self.apply_plain(&mut batch) {
            Plain::Committed => return self.committed(batch),
            Plain::Failed => return self.fail(batch),
            Plain::Retry => {}
        }
        if !self.connect() {
            return self.fail(batch);
        }
        let Some(conn) = self.conn.as_mut() else {
            return self.fail(batch);
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            write_tx(conn, |conn| {
                for job in batch.iter_mut() {
                    job.apply(conn)?;
                }
                Ok::<_, diesel::result::Error>(())
            })
        }));
        match outcome {
            Ok(Ok(())) => self.committed(batch),
            Ok(Err(e)) => {
                tracing::error!(error = %e, messages = batch.len(), "a batch of charger messages did not commit");
                self.fail(batch);
            }
            Err(_) => {
                tracing::error!(
                    messages = batch.len(),
                    "a charger message panicked; its batch is answered with an error"
                );
                self.fail(batch);
            }
        }
    }

    /// Opens the writer's connection when it has none; `false` when that fails.
    fn connect(&mut self) -> bool {
        if self.conn.is_none() {
            match self.db.dedicated() {
                Ok(conn) => self.conn = Some(conn),
                Err(e) => {
                    tracing::error!(error = %e, "the charger writer cannot connect");
                    return false;
                }
            }
        }
        true
    }

    /// The fast path: the whole batch in one transaction without a savepoint per message
    /// (two round trips fewer per message on PostgreSQL). Any message failing (an error or a
    /// panic) rolls the batch back for a second run with savepoints.
    fn apply_plain(&mut self, batch: &mut [Box<dyn Job>]) -> Plain {
        let Some(conn) = self.conn.as_mut() else {
            return Plain::Retry;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            write_tx(conn, |conn| {
                for job in batch.iter_mut() {
                    if !job.apply_plain(conn) {
                        return Err(Again::Retry);
                    }
                }
                Ok(())
            })
        }));
        match outcome {
            Ok(Ok(())) => Plain::Committed,
            Ok(Err(Again::Retry)) => Plain::Retry,
            Ok(Err(Again::Db(e))) => {
                tracing::error!(error = %e, messages = batch.len(), "a batch of charger messages did not commit");
                Plain::Failed
            }
            Err(_) => {
                // The transaction's state is unknown after a panic: a new connection (the
                // server rolls back the old one's transaction when it closes).
                tracing::error!("a charger message panicked; its batch runs again with savepoints");
                self.conn = None;
                Plain::Retry
            }
        }
    }

    /// Answers a committed batch.
    fn committed(&mut self, batch: Vec<Box<dyn Job>>) {
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats
            .messages
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for job in batch {
            job.finish(true);
        }
    }

    /// Answers a batch that did not commit, and starts afresh: a new connection, and one
    /// message per transaction for a while.
    fn fail(&mut self, batch: Vec<Box<dyn Job>>) {
        self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
        self.conn = None;
        self.solo_left = self.settings.max_batch;
        for job in batch {
            job.finish(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};

    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        v: String,
    }

    fn setup() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::connect(&url, 2).unwrap();
        diesel::sql_query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)")
            .execute(&mut *db.get().unwrap())
            .unwrap();
        (dir, db)
    }

    fn insert(v: &str) -> impl FnMut(&mut DbConn) -> Result<usize, ApiError> + Send + 'static {
        let v = v.to_string();
        move |conn| {
            Ok(diesel::sql_query("INSERT INTO t (v) VALUES (?)")
                .bind::<Text, _>(v.clone())
                .execute(conn)?)
        }
    }

    fn stored(db: &Db) -> Vec<String> {
        diesel::sql_query("SELECT v FROM t ORDER BY id")
            .load::<Row>(&mut db.get().unwrap())
            .unwrap()
            .into_iter()
            .map(|r| r.v)
            .collect()
    }

    async fn queued(writer: &GroupWriter, n: usize) {
        while writer.stats().queued() < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn messages_queued_together_commit_in_one_transaction_in_order_and_a_failure_stays_alone()
    {
        let (_dir, db) = setup();
        let writer = Arc::new(GroupWriter::start(db.clone(), Settings::default()));
        let held = writer.hold().await;
        let mut answers = Vec::new();
        // "b" twice: the second violates UNIQUE and must fail alone.
        for (i, v) in ["a", "b", "b", "c"].into_iter().enumerate() {
            let w = writer.clone();
            answers.push(tokio::spawn(async move { w.submit("cp", insert(v)).await }));
            // The writer has taken the first one and waits for the hold; the rest queue.
            queued(&writer, i + 1).await;
        }
        queued(&writer, 3).await;
        drop(held);
        let mut results = Vec::new();
        for a in answers {
            results.push(a.await.unwrap());
        }
        assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
        assert!(results[2].is_err(), "the duplicate fails: {:?}", results[2]);
        assert_eq!(stored(&db), ["a", "b", "c"]);
        assert_eq!(writer.stats().batches(), 1);
        assert_eq!(writer.stats().messages(), 4);
    }

    #[tokio::test]
    async fn an_answered_message_is_already_committed() {
        let (_dir, db) = setup();
        let writer = GroupWriter::start(db.clone(), Settings::default());
        writer.submit("cp", insert("x")).await.unwrap();
        // A fresh connection (not the writer's) sees it at once.
        assert_eq!(stored(&db), ["x"]);
        let count: i64 = writer
            .submit("cp", |conn| {
                #[derive(QueryableByName)]
                struct N {
                    #[diesel(sql_type = BigInt)]
                    n: i64,
                }
                Ok(diesel::sql_query("SELECT COUNT(*) AS n FROM t")
                    .get_result::<N>(conn)?
                    .n)
            })
            .await
            .unwrap();
        assert_eq!(count, 1);
    }

    #[tokio::test]
    async fn a_panicking_message_is_rolled_back_alone_and_its_batch_commits() {
        let (_dir, db) = setup();
        let writer = Arc::new(GroupWriter::start(db.clone(), Settings::default()));
        let held = writer.hold().await;
        let mut answers = Vec::new();
        for (i, v) in ["before", "bug", "after"].into_iter().enumerate() {
            let w = writer.clone();
            answers.push(tokio::spawn(async move {
                if v == "bug" {
                    // Writes, then panics: its write must not survive.
                    w.submit("cp", |conn| -> Result<(), ApiError> {
                        insert("bug")(conn)?;
                        panic!("a bug")
                    })
                    .await
                } else {
                    w.submit("cp", insert(v)).await.map(|_| ())
                }
            }));
            queued(&writer, i + 1).await;
        }
        queued(&writer, 2).await;
        drop(held);
        let mut results = Vec::new();
        for a in answers {
            results.push(a.await.unwrap());
        }
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(matches!(results[1], Err(ApiError::Internal(_))));
        assert_eq!(stored(&db), ["before", "after"]);
        assert_eq!(writer.stats().batches(), 1);
        assert_eq!(writer.stats().failed_batches(), 0);
        // The writer's connection is still usable for the next batch.
        writer.submit("cp", insert("next")).await.unwrap();
        assert_eq!(stored(&db), ["before", "after", "next"]);
    }
}
