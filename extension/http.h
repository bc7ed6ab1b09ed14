/*-------------------------------------------------------------------------
 *
 * extension/http.h
 *	  Concurrent HTTP GETs over the libcurl multi interface.
 *
 * A *request* is one GET; a *group* is a set of requests that share a
 * concurrency bound (in practice: one provider). md_http_start() starts a
 * *run*, a set of requests that go out concurrently, never more than a
 * group's limit at once per group; the caller pulls the completed ones
 * with md_http_next() and so decides when to wait and what to do in
 * between. Waits are slices of at most 100 ms with interrupts checked
 * between them, so query cancel, statement_timeout and SIGTERM are
 * answered promptly, in a backend as in a background worker. Every
 * libcurl handle is freed on every path.
 *
 * Failures of the far side (timeouts, refused connections, resets, bodies
 * over the size cap) are results, not errors: they come back in the
 * request. md_http_next raises only for our own failures (out of memory,
 * libcurl refusing an option) and for interrupts.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_HTTP_H
#define MD_HTTP_H

typedef struct MdHttpRequest
{
	/* input */
	char	   *url;			/* http or https; may hold a secret: never log */
	char	  **headers;		/* NULL-terminated "Name: value" list, or NULL */
	int			group;			/* 0 .. ngroups-1 */
	void	   *private;		/* the caller's */

	/* output, palloc'd in the caller's memory context */
	long		status;			/* HTTP status of the last response, 0 if none */
	char	   *body;			/* NUL-terminated; "" when none */
	int			body_len;
	bool		too_large;		/* the body passed the size cap: body holds
								 * its first marketdata.http_max_response_size
								 * bytes */
	int			curl_code;		/* CURLcode, 0 when the transfer completed */
	char	   *error;			/* libcurl's text for curl_code, NULL when none */
	char	   *error_detail;	/* libcurl's detailed message (may name the
								 * host, never the query), NULL when none */
	int			retry_after;	/* seconds from Retry-After, -1 when absent */
	double		latency_ms;		/* from start to the end of the transfer */
} MdHttpRequest;

/* a set of requests under way together; its answers are pulled */
typedef struct MdHttpRun MdHttpRun;

/*
 * Start nrequests requests, at most group_limits[g] of group g at a time,
 * with results allocated in the current memory context (requests and
 * group_limits must live as long). Their transfers are freed by
 * md_http_end, or when that memory context goes (after an error).
 */
extern MdHttpRun *md_http_start(MdHttpRequest *requests, int nrequests,
								const int *group_limits, int ngroups);

/*
 * The next completed request: at once when one is, else waiting up to
 * timeout_ms for the network (0: not at all, -1: until one completes), in
 * slices of 100 ms between which interrupts are answered. NULL when none
 * completed in that time, or when every request has been handed out.
 */
extern MdHttpRequest *md_http_next(MdHttpRun *run, long timeout_ms);

/* every request completed and handed out */
extern bool md_http_finished(MdHttpRun *run);

/*
 * While the caller does long work between md_http_next calls (a worker
 * storing jobs): let the run read the answers that came in and start the
 * next requests in their place, without waiting for anything; the
 * completed ones wait for md_http_next.
 */
extern void md_http_pump(MdHttpRun *run);

/* free what the run still holds (nothing once it is finished) */
extern void md_http_end(MdHttpRun *run);

/* percent-encode a path segment or query value (RFC 3986 unreserved kept) */
extern char *md_http_escape(const char *text);

/* the User-Agent we send */
extern const char *md_http_user_agent(void);

#endif							/* MD_HTTP_H */
