/*-------------------------------------------------------------------------
 *
 * extension/spi_util.c
 *	  Small SPI helpers shared by every file that talks SQL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "spi_util.h"

SPIPlanPtr
md_spi_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		*slot = plan;
	}
	return *slot;
}

void
md_spi_run(SPIPlanPtr plan, Datum *args, const char *nulls, bool read_only,
		   long count, int expected, const char *what)
{
	int			rc = SPI_execute_plan(plan, args, nulls, read_only, count);

	if (rc != expected)
		elog(ERROR, "%s failed: %s", what, SPI_result_code_string(rc));
}
