/*-------------------------------------------------------------------------
 *
 * extension/provider_alphavantage.h
 *	  What the quote and history parsers of Alpha Vantage share.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_PROVIDER_ALPHAVANTAGE_H
#define MD_PROVIDER_ALPHAVANTAGE_H

#include "utils/jsonb.h"

#include "provider.h"

/*
 * Alpha Vantage's errors all come with HTTP 200, told apart by the top
 * key: "Error Message" (a missing key, or an invalid call: an unknown
 * symbol), "Note" (the legacy per-minute throttle), "Information" (the
 * daily limit, or a premium feature: not entitled). True when root is one
 * of them (the fetch is then classified).
 */
extern bool md_alphavantage_refused(MdFetch *f, MdHttpRequest *req, JsonbContainer *root);

#endif							/* MD_PROVIDER_ALPHAVANTAGE_H */
