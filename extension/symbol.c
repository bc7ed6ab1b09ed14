/*-------------------------------------------------------------------------
 *
 * extension/symbol.c
 *	  Normalisation and validation of ticker symbols.
 *
 * A *symbol* is what a provider calls an instrument: BRK.B, ^GSPC,
 * EURUSD=X, GC=F, BTC-USD, OCDO.L. We store it trimmed and upper-cased,
 * 1 to 32 characters from letters, digits and . - ^ = _ / so that it is
 * safe in a URL path segment after percent-encoding and in a Redis key.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "symbol.h"

static bool
symbol_char_ok(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == '.' || c == '-' || c == '^' || c == '=' || c == '_' || c == '/';
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

char *
md_symbol_normalize(const char *text, int len, const char **problem)
{
	int			start = 0;
	int			end = len;
	char	   *result;
	char		first;
	int			i;

	while (start < end && is_blank(text[start]))
		start++;
	while (end > start && is_blank(text[end - 1]))
		end--;
	if (end == start)
	{
		*problem = "a symbol must not be empty";
		return NULL;
	}
	if (end - start > MD_SYMBOL_MAX_LEN)
	{
		*problem = "a symbol has at most 32 characters";
		return NULL;
	}
	result = palloc(end - start + 1);
	/* no leading punctuation (but the index mark ^), no "..": a symbol is
	 * a URL path segment at some providers and must not be a dot segment */
	first = pg_ascii_toupper((unsigned char) text[start]);
	if (!((first >= 'A' && first <= 'Z') || (first >= '0' && first <= '9') || first == '^'))
	{
		pfree(result);
		*problem = "a symbol starts with a letter, a digit or ^";
		return NULL;
	}
	for (i = start; i < end; i++)
	{
		char		c = pg_ascii_toupper((unsigned char) text[i]);

		if (!symbol_char_ok(c))
		{
			pfree(result);
			*problem = "a symbol may only contain letters, digits and . - ^ = _ /";
			return NULL;
		}
		if (c == '.' && i > start && result[i - start - 1] == '.')
		{
			pfree(result);
			*problem = "a symbol must not contain \"..\"";
			return NULL;
		}
		result[i - start] = c;
	}
	result[end - start] = '\0';
	return result;
}

char *
md_symbol_normalize_or_error(const char *text, int len)
{
	const char *problem = NULL;
	char	   *result = md_symbol_normalize(text, len, &problem);

	if (result == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid symbol \"%s\"",
						pnstrdup(text, Min(len, 64))),
				 errdetail("%s.", problem),
				 errhint("Use a ticker such as AAPL, BRK.B, ^GSPC, EURUSD=X or BTC-USD.")));
	return result;
}

PG_FUNCTION_INFO_V1(md_normalize_symbol_sql);
PG_FUNCTION_INFO_V1(md_normalize_symbols_sql);

/* _md_normalize_symbol(text) -> text */
Datum
md_normalize_symbol_sql(PG_FUNCTION_ARGS)
{
	text	   *in;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("symbol must not be null")));
	in = PG_GETARG_TEXT_PP(0);
	PG_RETURN_TEXT_P(cstring_to_text(md_symbol_normalize_or_error(VARDATA_ANY(in),
																  VARSIZE_ANY_EXHDR(in))));
}

/*
 * _md_normalize_symbols(text[]) -> text[]: a job's symbol list, each one
 * normalised; 1 to 500 of them, no NULLs, no duplicates.
 */
Datum
md_normalize_symbols_sql(PG_FUNCTION_ARGS)
{
	ArrayType  *in;
	Datum	   *elems;
	bool	   *nulls;
	char	  **syms;
	int			n;
	int			i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("symbols must not be null")));
	in = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_NDIM(in) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("symbols must be a one-dimensional array")));
	deconstruct_array(in, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n < 1 || n > MD_MAX_SYMBOLS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a job has 1 to %d symbols, not %d", MD_MAX_SYMBOLS, n)));
	syms = palloc(sizeof(char *) * n);
	for (i = 0; i < n; i++)
	{
		text	   *t;
		char	   *sym;
		int			j;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("symbol %d of the list is null", i + 1)));
		t = DatumGetTextPP(elems[i]);
		sym = md_symbol_normalize_or_error(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		for (j = 0; j < i; j++)
			if (strcmp(syms[j], sym) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("duplicate symbol \"%s\" in the list", sym)));
		syms[i] = sym;
		elems[i] = CStringGetTextDatum(sym);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}
