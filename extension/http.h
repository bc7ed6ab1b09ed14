/*-------------------------------------------------------------------------
 *
 * extension/http.h
 *	  Concurrent HTTP GETs over the libcurl multi interface.
 *
 * A *request* is one GET; a *group* is a set of requests that share a
 * concurrency bound (in practice: one provider). md_http_run() runs a set
 * of requests concurrently, never more than a group's limit at once per
 * group, and returns when all are done. It waits in slices of at most
 * 100 ms and checks for interrupts between them, so query cancel,
 * statement_timeout and SIGTERM are answered promptly, in a backend as in
 * a background worker. Every libcurl handle is freed on every path.
 *
 * Failures of the far side (timeouts, refused connections, resets, bodies
 * over the size cap) are results, not errors: they come back in the
 * request. md_http_run raises only for our own failures (out of memory,
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

/* called as each request completes (in the calling process, may ereport) */
typedef void (*MdHttpDone) (MdHttpRequest *request, void *arg);

/*
 * Called when the run is about to wait for the network: every request
 * that can go out is out and every answer in has been handed to done.
 */
typedef void (*MdHttpIdle) (void *arg);

/*
 * Run nrequests requests concurrently, at most group_limits[g] of group g
 * at a time, calling done (when not NULL) as each one completes, and idle
 * (when not NULL) before each wait.
 */
extern void md_http_run(MdHttpRequest *requests, int nrequests,
						const int *group_limits, int ngroups,
						MdHttpDone done, MdHttpIdle idle, void *arg);

/*
 * From a callback doing long work (a worker storing jobs): let the
 * run under way read the answers that came in meanwhile and start the
 * next requests in their place, without waiting for anything; the
 * finished ones are handed to done after the callback returns. Nothing
 * when no run is under way.
 */
extern void md_http_pump(void);

/* percent-encode a path segment or query value (RFC 3986 unreserved kept) */
extern char *md_http_escape(const char *text);

/* the User-Agent we send */
extern const char *md_http_user_agent(void);

#endif							/* MD_HTTP_H */
