/*-------------------------------------------------------------------------
 *
 * extension/errors.h
 *	  SQLSTATEs of marketdata's own error classes.
 *
 * Class "MD" is ours (PostgreSQL leaves classes starting with I-Z to
 * implementations). Bad arguments use PostgreSQL's standard codes
 * (22023 invalid_parameter_value, 22004 null_value_not_allowed, ...).
 * Every code here is listed in docs/errors.md.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_ERRORS_H
#define MD_ERRORS_H

#include "utils/elog.h"

/* no price stored for the symbol, or none fresh enough, and nobody to ask */
#define ERRCODE_MD_NO_PRICE			MAKE_SQLSTATE('M','D','0','0','1')

/*
 * Provider error classes (docs/errors.md). Each has its own SQLSTATE here,
 * its own md.job_runs / md.raw_responses error_class word and its own HTTP
 * status in the REST API.
 */
/* the provider does not know the symbol (HTTP 404 in the API) */
#define ERRCODE_MD_UNKNOWN_SYMBOL	MAKE_SQLSTATE('M','D','1','0','0')
/* known symbol, but no price now: market closed, delisted (404) */
#define ERRCODE_MD_NO_DATA			MAKE_SQLSTATE('M','D','1','0','1')
/* rate limited; DETAIL is "Retry after N s." (503 with Retry-After) */
#define ERRCODE_MD_RATE_LIMITED		MAKE_SQLSTATE('M','D','1','0','2')
/* the provider refused our credentials (502) */
#define ERRCODE_MD_AUTH_FAILED		MAKE_SQLSTATE('M','D','1','0','3')
/* timeout, connection error, 5xx, or circuit breaker open (503) */
#define ERRCODE_MD_UNAVAILABLE		MAKE_SQLSTATE('M','D','1','0','4')
/* a body we cannot read as the provider's format (502) */
#define ERRCODE_MD_MALFORMED		MAKE_SQLSTATE('M','D','1','0','5')

#endif							/* MD_ERRORS_H */
