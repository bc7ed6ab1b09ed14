/*
 * api/src/db.c
 *	Asynchronous database queries through Kore's pgsql layer, as one
 *	small state table driven by Kore's pgsql callback.
 *
 * A *query* here (struct dbq) is not bound to a request: it belongs to
 * whoever started it (a request, a flight, the key cache) and reports
 * back through a callback with one value, row 0 column 0, or the error
 * with its SQLSTATE. Every SQL text of the API asks one of the
 * extension's functions, so the logic lives in SQL.
 *
 * Every query text is a prepared statement on each connection (named
 * after its place in a small table of the texts seen): PostgreSQL then
 * parses and plans it once per connection instead of once per request
 * (bench/README.md, "api"). Kore's pgsql layer only sends unnamed
 * statements, so the first use on a connection sends PQsendPrepare, and
 * every use PQsendQueryPrepared, on Kore's connection, scheduled on
 * Kore's event loop exactly as Kore schedules its own queries. A
 * connection that was reset (a new backend) prepares again.
 * MD_API_DATABASE_PREPARE=0 sends every query unnamed (parse, bind and
 * execute in one round trip) instead: behind a pooler in transaction
 * mode (PgBouncer 1.18), consecutive queries of one connection may run
 * on different backends, which never saw the named statement.
 *
 * (The server sends a prepare's ParseComplete and ReadyForQuery in one
 * flush, so Kore's drain of the connection after DONE does not wait.)
 *
 * States: INIT (waiting for a free connection) -> [prepare: WAIT -> DONE
 * -> COMPLETE -> INIT] -> WAIT -> RESULT -> DONE -> COMPLETE, or ERROR.
 * Kore does not call back when a connection dies under a query
 * (pgsql_conn_cleanup only wakes bound requests), so a timer checks
 * running queries for that, and also frees finished ones: a query is
 * never freed inside Kore's own call chain.
 */

#include <string.h>

#include "api.h"

#define STMT_MAX		32
#define PREPARED_MAX		256

/* Which statements a connection (a backend) has prepared. */
struct prepared {
	PGconn			*conn;
	int			 pid;		/* the backend's */
	u_int32_t		 stmts;		/* bit i: statement i */
};

static const char	*stmt_texts[STMT_MAX];
static int		 stmt_count;
static struct prepared	 prepared[PREPARED_MAX];

struct dbq {
	struct kore_pgsql	 sql;
	int			 stmt;		/* index in stmt_texts, -1: none */
	int			 preparing;	/* the prepare is running */
	int			 prepared_now;	/* run again on a connection */
	const char		*dbname;
	const char		*query;
	int			 nparams;
	char			*params[API_NARGS];
	int			 finished;
	int			 retried;
	int			 retrying;
	struct api_dbres	 res;
	void			(*cb)(struct api_dbres *, void *);
	void			*arg;
	TAILQ_ENTRY(dbq)	 list;
};

static TAILQ_HEAD(, dbq)	dbq_running;
static TAILQ_HEAD(, dbq)	dbq_finished;

int	api_db_active;

static void	dbq_run(struct dbq *);
static void	dbq_state(struct kore_pgsql *, void *);
static void	dbq_finish(struct dbq *);
static void	dbq_timer(void *, u_int64_t);

void
api_db_init(void)
{
	TAILQ_INIT(&dbq_running);
	TAILQ_INIT(&dbq_finished);
	(void)kore_timer_add(dbq_timer, 100, NULL, 0);
}

/* The statement number of a query text (texts are constants). */
static int
stmt_id(const char *query)
{
	int	i;

	for (i = 0; i < stmt_count; i++) {
		if (stmt_texts[i] == query || !strcmp(stmt_texts[i], query))
			return (i);
	}
	if (stmt_count == STMT_MAX)
		return (-1);	/* more texts than expected: unnamed */
	stmt_texts[stmt_count] = query;
	return (stmt_count++);
}

/*
 * The record of conn's backend, made (empty) when new or reset. Kore
 * frees connections without telling us: a record is matched by address
 * and backend pid, never dereferenced, and when the table is full the
 * next slot in turn is taken over (its connection, if alive, prepares
 * again and is told the statement exists: dbq_state takes that as done).
 */
static struct prepared *
prepared_of(PGconn *conn)
{
	static int	 next_slot;
	struct prepared	*p;
	int		 pid = PQbackendPID(conn);

	for (p = prepared; p < prepared + PREPARED_MAX; p++) {
		if (p->conn == conn && p->pid == pid)
			return (p);
	}
	for (p = prepared; p < prepared + PREPARED_MAX; p++) {
		if (p->conn == conn || p->conn == NULL)
			break;
	}
	if (p == prepared + PREPARED_MAX)
		p = &prepared[next_slot++ % PREPARED_MAX];
	p->conn = conn;
	p->pid = pid;
	p->stmts = 0;
	return (p);
}

/* Kore's pgsql_schedule(), which is not exported: wait for the answer. */
static void
dbq_schedule(struct dbq *q)
{
	kore_platform_schedule_read(PQsocket(q->sql.conn->db), q->sql.conn);
	q->sql.state = KORE_PGSQL_STATE_WAIT;
	q->sql.flags |= KORE_PGSQL_SCHEDULED;
}

/* Sends q on its connection: prepared (preparing first when needed). */
static int
dbq_send(struct dbq *q, const char **values, int *lengths, int *formats)
{
	PGconn		*db = q->sql.conn->db;
	struct prepared	*p;
	char		 name[16];

	if (q->stmt < 0 || (p = prepared_of(db)) == NULL)
		return (kore_pgsql_query_param_fields(&q->sql, q->query, 0,
		    q->nparams, values, lengths, formats));

	(void)snprintf(name, sizeof(name), "md_api_%d", q->stmt);
	if (!(p->stmts & (1U << q->stmt))) {
		if (!PQsendPrepare(db, name, q->query, q->nparams, NULL))
			return (KORE_RESULT_ERROR);
		q->preparing = 1;
	} else if (!PQsendQueryPrepared(db, name, q->nparams, values,
	    lengths, formats, 0)) {
		return (KORE_RESULT_ERROR);
	}
	dbq_schedule(q);
	return (KORE_RESULT_OK);
}

/* The prepare of q succeeded: remember it for the connection. */
static void
dbq_prepared(struct dbq *q)
{
	struct prepared	*p;

	q->preparing = 0;
	q->prepared_now = 1;
	if ((p = prepared_of(q->sql.conn->db)) != NULL)
		p->stmts |= 1U << q->stmt;
}

void
api_db_query(const char *dbname, const char *query, int nparams,
    const char **params, void (*cb)(struct api_dbres *, void *), void *arg)
{
	struct dbq	*q;
	int		 i;

	if (nparams > API_NARGS)
		fatal("api_db_query: too many parameters");

	q = kore_calloc(1, sizeof(*q));
	q->dbname = dbname;
	q->query = query;
	q->nparams = nparams;
	for (i = 0; i < nparams; i++)
		q->params[i] = params[i] ? kore_strdup(params[i]) : NULL;
	q->cb = cb;
	q->arg = arg;
	q->stmt = api_cfg.db_prepare ? stmt_id(query) : -1;
	TAILQ_INSERT_TAIL(&dbq_running, q, list);
	api_db_active++;

	kore_pgsql_init(&q->sql);
	kore_pgsql_bind_callback(&q->sql, dbq_state, q);
	dbq_run(q);
}

static void
dbq_set_error(struct dbq *q, const char *fallback)
{
	PGresult	*r = q->sql.result;
	const char	*s;

	if (q->res.message != NULL)
		return;
	if (r != NULL && (s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) != NULL)
		(void)kore_strlcpy(q->res.sqlstate, s, sizeof(q->res.sqlstate));
	if (r != NULL &&
	    (s = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)) != NULL)
		q->res.message = kore_strdup(s);
	else
		q->res.message = kore_strdup(q->sql.error ? q->sql.error :
		    fallback);
	if (r != NULL &&
	    (s = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)) != NULL)
		q->res.detail = kore_strdup(s);
}

/* Get a connection and send the query; called again when one frees up. */
static void
dbq_run(struct dbq *q)
{
	const char	*values[API_NARGS];
	int		 lengths[API_NARGS], formats[API_NARGS], i;

	if (!kore_pgsql_setup(&q->sql, q->dbname, KORE_PGSQL_ASYNC)) {
		/* INIT: queued until a connection is free, Kore calls back */
		if (q->sql.state == KORE_PGSQL_STATE_INIT)
			return;
		dbq_set_error(q, "no database connection");
		dbq_finish(q);
		return;
	}

	/*
	 * A pooled connection whose server went away stays in Kore's pool
	 * as CONNECTION_BAD: reconnect it (blocking, but only right after
	 * the database was lost).
	 */
	if (PQstatus(q->sql.conn->db) == CONNECTION_BAD)
		PQreset(q->sql.conn->db);

	for (i = 0; i < q->nparams; i++) {
		values[i] = q->params[i];
		lengths[i] = q->params[i] ? (int)strlen(q->params[i]) : 0;
		formats[i] = 0;
	}

	if (!dbq_send(q, values, lengths, formats)) {
		dbq_set_error(q, "cannot send the query");
		kore_pgsql_cleanup(&q->sql);
		dbq_finish(q);
	}
}

static void
dbq_state(struct kore_pgsql *sql, void *arg)
{
	struct dbq	*q = arg;

	if (q->finished || q->retrying)
		return;

	switch (sql->state) {
	case KORE_PGSQL_STATE_INIT:
		dbq_run(q);
		break;
	case KORE_PGSQL_STATE_WAIT:
		break;
	case KORE_PGSQL_STATE_RESULT:
		if (q->res.value == NULL && !q->res.isnull &&
		    kore_pgsql_ntuples(sql) > 0 && kore_pgsql_nfields(sql) > 0) {
			if (PQgetisnull(sql->result, 0, 0))
				q->res.isnull = 1;
			else
				q->res.value =
				    kore_strdup(kore_pgsql_getvalue(sql, 0, 0));
			if (kore_pgsql_nfields(sql) > 1 &&
			    !PQgetisnull(sql->result, 0, 1))
				q->res.value2 =
				    kore_strdup(kore_pgsql_getvalue(sql, 0, 1));
		} else if (kore_pgsql_ntuples(sql) == 0) {
			q->res.isnull = 1;
		}
		kore_pgsql_continue(sql);
		break;
	case KORE_PGSQL_STATE_ERROR:
		dbq_set_error(q, "database error");
		if (q->preparing && !strcmp(q->res.sqlstate, "42P05")) {
			/* prepared before we lost track of it: fine */
			api_dbres_clear(&q->res);
			kore_pgsql_continue(sql);
			break;
		}
		if (sql->result != NULL && sql->conn != NULL &&
		    q->res.sqlstate[0] != '\0') {
			/* a server error: read on until the query is done */
			kore_pgsql_continue(sql);
		} else if (!q->retried) {
			/*
			 * The connection failed (the server restarted since
			 * it was pooled): once more on a fresh one.
			 */
			q->retrying = 1;
			kore_pgsql_cleanup(sql);
			api_dbres_clear(&q->res);
			q->preparing = 0;
			kore_pgsql_init(sql);
			kore_pgsql_bind_callback(sql, dbq_state, q);
			q->retrying = 0;
			q->retried = 1;
			dbq_run(q);
		} else {
			/* the connection failed: give it back, report */
			kore_pgsql_cleanup(sql);
			dbq_finish(q);
		}
		break;
	case KORE_PGSQL_STATE_DONE:
		/* a prepare that failed reports its error as the query's */
		if (q->preparing && q->res.message == NULL)
			dbq_prepared(q);
		q->preparing = 0;
		kore_pgsql_continue(sql);
		break;
	case KORE_PGSQL_STATE_COMPLETE:
		if (q->prepared_now) {
			/* the statement is ready: now run it */
			q->prepared_now = 0;
			q->retrying = 1;
			kore_pgsql_init(sql);
			kore_pgsql_bind_callback(sql, dbq_state, q);
			q->retrying = 0;
			dbq_run(q);
			break;
		}
		dbq_finish(q);
		break;
	default:
		kore_pgsql_continue(sql);
		break;
	}
}

static void
dbq_finish(struct dbq *q)
{
	if (q->finished)
		return;
	q->finished = 1;
	q->res.ok = (q->res.message == NULL);
	TAILQ_REMOVE(&dbq_running, q, list);
	TAILQ_INSERT_TAIL(&dbq_finished, q, list);
	api_db_active--;
	/* the callback takes the strings of the result */
	q->cb(&q->res, q->arg);
	memset(&q->res, 0, sizeof(q->res));
}

static void
dbq_timer(void *unused, u_int64_t now)
{
	struct dbq	*q, *next;
	int		 i;

	(void)unused;
	(void)now;

	for (q = TAILQ_FIRST(&dbq_running); q != NULL; q = next) {
		next = TAILQ_NEXT(q, list);
		/* the connection died under the query, Kore said nothing */
		if (q->sql.conn == NULL && q->sql.state == KORE_PGSQL_STATE_ERROR) {
			dbq_set_error(q, "database connection lost");
			kore_pgsql_cleanup(&q->sql);
			dbq_finish(q);
		}
	}

	while ((q = TAILQ_FIRST(&dbq_finished)) != NULL) {
		TAILQ_REMOVE(&dbq_finished, q, list);
		kore_pgsql_cleanup(&q->sql);
		for (i = 0; i < q->nparams; i++)
			kore_free(q->params[i]);
		kore_free(q);
	}
}

/* A request's own query: the result lands in ctx->db. */
static void
ctx_db_done(struct api_dbres *res, void *arg)
{
	struct api_ctx	*ctx = arg;

	api_dbres_clear(&ctx->db);
	ctx->db = *res;
	ctx->db_us = api_now_us() - ctx->db_us;
	api_ctx_done(ctx);
}

int
api_db_start(struct api_ctx *ctx, const char *dbname, const char *query,
    int nparams, const char **params)
{
	api_ctx_wait(ctx);
	ctx->db_us = api_now_us();
	api_db_query(dbname, query, nparams, params, ctx_db_done, ctx);
	return (HTTP_STATE_RETRY);
}
