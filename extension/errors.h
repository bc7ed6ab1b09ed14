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

#endif							/* MD_ERRORS_H */
