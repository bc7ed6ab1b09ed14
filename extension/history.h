/*-------------------------------------------------------------------------
 *
 * extension/history.h
 *	  History (OHLCV bars) from the providers' history endpoints.
 *
 * A *history range* asks one provider for the bars of one symbol at one
 * interval between two times. It is cut into *requests* within the
 * provider's depth per request (Yahoo's intraday limits, Alpha Vantage's
 * intraday months); each request may answer in several *pages* (Polygon's
 * next_url). A page is read by its provider's history parser
 * (provider_<name>_history.c) into bars and corporate events, checked
 * whole (history_page.c): a page that is malformed, truncated or
 * inconsistent is rejected with no bar kept, and elements outside the
 * asked range are dropped. Each page's response is kept in
 * md.raw_responses like a price fetch's.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_HISTORY_H
#define MD_HISTORY_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "provider.h"

typedef struct MdBar
{
	TimestampTz ts;				/* the bar's start as the provider stamped it */
	Numeric		open;
	Numeric		high;
	Numeric		low;
	Numeric		close;
	Numeric		volume;			/* NULL when not given */
} MdBar;

typedef enum MdEventKind
{
	MD_EVENT_SPLIT,
	MD_EVENT_DIVIDEND,
} MdEventKind;

typedef struct MdEvent
{
	TimestampTz ts;
	MdEventKind kind;
	Numeric		value;			/* split: new shares per old share;
								 * dividend: amount per share */
} MdEvent;

/* an interval as providers name them: a count of one unit */
typedef enum MdBarUnit
{
	MD_UNIT_MINUTE,
	MD_UNIT_DAY,
	MD_UNIT_WEEK,
	MD_UNIT_MONTH,
} MdBarUnit;

typedef struct MdBarStep
{
	int			count;
	MdBarUnit	unit;
} MdBarStep;

typedef struct MdHistoryPage
{
	/*
	 * symbol, provider, base_url, key; the outcome (cls, message,
	 * retry_after, currency) and the raw response, as for a price
	 */
	MdFetch		fetch;

	/* input */
	MdBarStep	step;
	TimestampTz from;			/* the request's range: [from, to) */
	TimestampTz to;
	char	   *page_path;		/* a next page's path and query on base_url,
								 * NULL for a request's first page */
	int			page;			/* 0 for the first page of a request */

	/* outcome */
	MdBar	   *bars;			/* ascending by ts, no two at one ts */
	int			nbars;
	int			nskipped;		/* bars without prices (nulls) */
	int			ndropped;		/* bars outside [from, to) */
	MdEvent    *events;
	int			nevents;
	char	   *next_path;		/* the next page to ask, NULL when done */
} MdHistoryPage;

typedef struct MdHistoryProvider
{
	const char *name;			/* as in MdProvider */

	/*
	 * false (with a reason) when the provider has no bars at that
	 * interval
	 */
	bool		(*supports) (MdBarStep step, const char **why);
	/* the end of a request that starts at from, at most to */
	TimestampTz (*request_end) (MdBarStep step, TimestampTz from, TimestampTz to);
	/* HTTP providers: fill in the request of a page; read its answer */
	void		(*build) (MdHistoryPage *p, MdHttpRequest *req);
	void		(*parse) (MdHistoryPage *p, MdHttpRequest *req);
	/* the sandbox: answer without network */
	void		(*answer) (MdHistoryPage *p);
} MdHistoryProvider;

extern const MdHistoryProvider md_history_yahoo;
extern const MdHistoryProvider md_history_polygon;
extern const MdHistoryProvider md_history_alphavantage;
extern const MdHistoryProvider md_history_finnhub;
extern const MdHistoryProvider md_history_sandbox;

/* the history implementation of a provider, NULL when it has none */
extern const MdHistoryProvider *md_history_lookup(const char *provider);

/*
 * The step of an interval ('1 minute', '1 day', '1 week', '1 month'),
 * false when it is not a whole count of one of these units.
 */
extern bool md_bar_step(const Interval *interval, MdBarStep *step);
/* its length in microseconds for the units of fixed length (0 for months) */
extern int64 md_bar_step_usecs(MdBarStep step);

/*
 * Every page of a range: the requests run concurrently within the
 * provider's max_concurrency, and a page's next page is asked when it is
 * in. The pages' responses are stored in md.raw_responses. Returns the
 * number of pages in *npages.
 */
extern MdHistoryPage *md_history_fetch(const char *symbol, const char *provider,
									   MdBarStep step, TimestampTz from,
									   TimestampTz to, int *npages);

/* ---- for the parsers (history_page.c) ---- */

/* room for n bars */
extern void md_history_bars_alloc(MdHistoryPage *p, int n);

/*
 * Add a bar from the provider's values (any may be NULL: a JSON null).
 * A bar whose open, high, low and close are all NULL is no bar (skipped);
 * some missing is the same. Returns false with the page failed as
 * malformed when the bar is inconsistent (high < low, a price outside
 * [low, high] is allowed, negative volume or prices).
 */
extern bool md_history_add_bar(MdHistoryPage *p, TimestampTz ts, Numeric open,
							   Numeric high, Numeric low, Numeric close,
							   Numeric volume);
extern void md_history_add_event(MdHistoryPage *p, TimestampTz ts, MdEventKind kind,
								 Numeric value);

/*
 * After a parser's success: sorted ascending, duplicates of a time
 * rejected, bars outside [from, to) dropped, minor currency units (GBp)
 * made major. False when the page was rejected.
 */
extern bool md_history_finish_page(MdHistoryPage *p);

/*
 * Bars given as parallel arrays: times (epoch seconds, named times_name
 * in messages) and the arrays names[0..4] (open, high, low, close,
 * volume) of the object columns, all as long as times. An empty times is
 * no bars; anything else amiss rejects the page.
 */
extern void md_history_read_arrays(MdHistoryPage *p, JsonbValue *times, const char *times_name,
								   JsonbContainer *columns, const char *const names[5]);

/* the page's failure as malformed with nothing kept */
extern void md_history_malformed(MdHistoryPage *p, const char *problem);

/* epoch seconds of a time (for URLs) */
extern int64 md_epoch_seconds(TimestampTz ts);

#endif							/* MD_HISTORY_H */
