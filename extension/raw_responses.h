/*-------------------------------------------------------------------------
 *
 * extension/raw_responses.h
 *	  md.raw_responses: every provider response, good or bad, as stored.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_RAW_RESPONSES_H
#define MD_RAW_RESPONSES_H

#include "provider.h"

/* a fetch's body as text we can store: masked, or hex when it is not text */
extern char *md_raw_response_body(MdFetch *f);

/*
 * After parsing, while the key is known: the body as it will be stored,
 * and the URL and message, with the key masked.
 */
extern void md_raw_response_mask(MdFetch *f);

/* every responded fetch into md.raw_responses, its new id into the fetch */
extern void md_raw_responses_store(MdFetch *fetches, int n);
extern void md_raw_responses_store_each(MdFetch **fetches, int n);

/* insert responses whose raw_response_id is set (an existing id is skipped) */
extern void md_raw_responses_insert(MdFetch **kept, int n);

#endif							/* MD_RAW_RESPONSES_H */
