/*-------------------------------------------------------------------------
 *
 * extension/spi_util.h
 *	  Small SPI helpers shared by every file that talks SQL.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_SPI_UTIL_H
#define MD_SPI_UTIL_H

#include "executor/spi.h"
#include "utils/array.h"

/*
 * Prepare sql once per backend and keep the plan in *slot; later calls
 * return the kept plan. Call inside SPI.
 */
extern SPIPlanPtr md_spi_plan(SPIPlanPtr *slot, const char *sql, int nargs,
							  Oid *argtypes);

/* Run a kept plan and raise an internal error unless it returned expected. */
extern void md_spi_run(SPIPlanPtr plan, Datum *args, const char *nulls,
					   bool read_only, long count, int expected,
					   const char *what);

/* one-dimensional arrays for SPI parameters; NULL strings become NULLs */
extern ArrayType *md_text_array(char **values, int n);
extern ArrayType *md_datum_array(Datum *values, bool *nulls, int n, Oid type);

#endif							/* MD_SPI_UTIL_H */
