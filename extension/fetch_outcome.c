/*-------------------------------------------------------------------------
 *
 * extension/fetch_outcome.c
 *	  How a fetch ends: the helpers every provider implementation uses to
 *	  set a price or an error class on its fetch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdarg.h>
#include <curl/curl.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "guc.h"
#include "fetch_outcome.h"

void
md_fetch_fail(MdFetch *f, MdErrorClass cls, const char *fmt,...)
{
	va_list		ap;
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(ap, fmt);
		needed = appendStringInfoVA(&buf, fmt, ap);
		va_end(ap);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	f->cls = cls;
	f->message = buf.data;
	f->price = NULL;
}

void
md_fetch_unknown_symbol(MdFetch *f)
{
	md_fetch_fail(f, MD_UNKNOWN_SYMBOL, "unknown symbol \"%s\" at provider %s",
				  f->symbol, f->provider);
}

void
md_fetch_rate_limited(MdFetch *f, int retry_after, const char *said)
{
	f->retry_after = retry_after >= 0 ? retry_after : MD_DEFAULT_RETRY_AFTER;
	md_fetch_fail(f, MD_RATE_LIMITED, "provider %s rate limited, retry after %d s%s%s",
				  f->provider, f->retry_after, said ? ": " : "", said ? said : "");
}

void
md_fetch_malformed(MdFetch *f, const char *problem)
{
	md_fetch_fail(f, MD_MALFORMED, "malformed answer from provider %s for \"%s\": %s",
				  f->provider, f->symbol, problem);
}

void
md_fetch_take_response(MdFetch *f, MdHttpRequest *req)
{
	f->responded = true;
	f->http_status = req->status;
	f->latency_ms = req->latency_ms;
	f->body = req->body;
	f->body_len = req->body_len;
	f->transport_detail = req->error_detail;
}

bool
md_fetch_transport_failed(MdFetch *f, MdHttpRequest *req)
{
	if (req->too_large)
	{
		md_fetch_malformed(f, psprintf("response larger than %d bytes",
									   md_http_max_response_size));
		return true;
	}
	if (req->curl_code == CURLE_OPERATION_TIMEDOUT)
	{
		md_fetch_fail(f, MD_UNAVAILABLE, "provider %s unavailable: no answer within %d ms",
					  f->provider, md_http_timeout);
		return true;
	}
	if (req->curl_code != CURLE_OK)
	{
		md_fetch_fail(f, MD_UNAVAILABLE, "provider %s unavailable: %s",
					  f->provider, req->error ? req->error : "transfer failed");
		return true;
	}
	if (req->status >= 300 && req->status < 400)
	{
		/* never followed: it could lead our key to another host */
		md_fetch_fail(f, MD_UNAVAILABLE, "provider %s unavailable: redirected with HTTP status %ld, "
					  "redirects are not followed", f->provider, req->status);
		return true;
	}
	if (req->status >= 500)
	{
		md_fetch_fail(f, MD_UNAVAILABLE, "provider %s unavailable: HTTP status %ld",
					  f->provider, req->status);
		return true;
	}
	return false;
}

char *
md_provider_said(const char *text)
{
	if (text == NULL)
		return NULL;
	/* whole characters only, at most 200 bytes */
	return pnstrdup(text, pg_mbcliplen(text, strlen(text), 200));
}

char **
md_headers(const char *first,...)
{
	va_list		ap;
	char	  **list = palloc0(sizeof(char *) * 8);
	const char *h;
	int			n = 0;

	va_start(ap, first);
	for (h = first; h != NULL && n < 7; h = va_arg(ap, const char *))
		list[n++] = pstrdup(h);
	va_end(ap);
	return list;
}

void
md_fetch_set_price(MdFetch *f, Numeric price, const char *currency)
{
	f->cls = MD_OK;
	f->message = NULL;
	f->price = price;
	f->currency = currency ? pstrdup(currency) : NULL;
	if (md_currency_major(&f->currency))
		f->price = md_minor_to_major(price);
}

bool
md_currency_major(char **currency)
{
	static const struct
	{
		const char *minor;
		const char *major;
	}			minor_units[] = {
		/* Yahoo quotes London in pence, Johannesburg in cents, Tel Aviv in agorot */
		{"GBp", "GBP"}, {"GBX", "GBP"}, {"ZAc", "ZAR"}, {"ZAC", "ZAR"}, {"ILA", "ILS"},
	};
	size_t		i;

	if (*currency == NULL)
		return false;
	for (i = 0; i < lengthof(minor_units); i++)
		if (strcmp(*currency, minor_units[i].minor) == 0)
		{
			*currency = pstrdup(minor_units[i].major);
			return true;
		}
	return false;
}

Numeric
md_minor_to_major(Numeric amount)
{
	bool		error = false;

	/* times 0.01 keeps the digits exact: 305.3 GBp is 3.053 GBP */
	return numeric_mul_opt_error(amount, int64_div_fast_to_numeric(1, 2), &error);
}

bool
md_fetch_status_ok(MdFetch *f, MdHttpRequest *req, void *root,
				   const char *problem, const char *said)
{
	if (req->status == 401 || req->status == 403)
	{
		/* a provider that needs a key is asked only with one */
		md_fetch_fail(f, MD_AUTH_FAILED, "provider %s refused %s: %s", f->provider,
					  f->key != NULL ? "our API key" : "the request",
					  said ? said : psprintf("HTTP status %ld", req->status));
		return false;
	}
	if (req->status != 200)
	{
		md_fetch_fail(f, MD_UNAVAILABLE, "provider %s unavailable: HTTP status %ld%s%s",
					  f->provider, req->status, said ? ": " : "", said ? said : "");
		return false;
	}
	if (root == NULL)
	{
		md_fetch_malformed(f, problem);
		return false;
	}
	return true;
}
