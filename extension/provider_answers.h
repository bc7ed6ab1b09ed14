/*-------------------------------------------------------------------------
 *
 * extension/provider_answers.h
 *	  Each provider's reading of its answers up to the body, shared by its
 *	  quote and history parsers: transport failures, its error statuses
 *	  and error bodies, the JSON. Each returns the body's root, or NULL
 *	  when the fetch is classified (a failure).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_PROVIDER_ANSWERS_H
#define MD_PROVIDER_ANSWERS_H

#include "utils/jsonb.h"

#include "provider.h"

/*
 * Yahoo: 429 (plain text) rate limited, 404 unknown, chart.error "Not
 * Found" unknown, another chart.error malformed. With range_asked, a 400
 * with chart.error ("Data doesn't exist for startDate") is no data.
 */
extern JsonbContainer *md_yahoo_answer(MdFetch *f, MdHttpRequest *req, bool range_asked);

/*
 * Alpha Vantage: errors come with HTTP 200, told apart by the top key:
 * "Error Message" (a missing key, or an invalid call: an unknown symbol),
 * "Note" (the legacy per-minute throttle), "Information" (the daily limit,
 * or a premium feature: not entitled).
 */
extern JsonbContainer *md_alphavantage_answer(MdFetch *f, MdHttpRequest *req);

/* Finnhub: {"error": ...} with 429 rate limited, 401/403 refused, 200 malformed */
extern JsonbContainer *md_finnhub_answer(MdFetch *f, MdHttpRequest *req);

/*
 * Polygon: "status" with "error" or "message"; 429 rate limited, a 400
 * about the API key refused, 404 unknown. *said: the error text, if any.
 */
extern JsonbContainer *md_polygon_answer(MdFetch *f, MdHttpRequest *req, char **said);

#endif							/* MD_PROVIDER_ANSWERS_H */
