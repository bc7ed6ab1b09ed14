/*-------------------------------------------------------------------------
 *
 * extension/provider_sandbox.c
 *	  The sandbox: deterministic synthetic prices, no network.
 *
 * It lets `make run` show the whole flow on a machine without internet;
 * md.providers has it with failover = false, so it is used only when
 * named. A symbol's price is the seeded random walk of sandbox_walk.h at
 * the start of the current minute, stamped with that minute.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "fetch_outcome.h"
#include "sandbox_walk.h"

static void
sandbox_answer(MdFetch *f)
{
	int64		now_s = (int64) (GetCurrentTimestamp() / USECS_PER_SEC) +
		(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
	int64		minutes = Max(0, (now_s - SANDBOX_ORIGIN) / 60);
	MdWalk		walk;
	double		levels[MINUTES_PER_DAY];
	double		price;

	md_walk_start(&walk, f->symbol, minutes / MINUTES_PER_DAY);
	md_walk_minutes(&walk, levels);
	price = exp(levels[minutes % MINUTES_PER_DAY]);

	f->ts = (TimestampTz) (SANDBOX_ORIGIN + minutes * 60 -
						   (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY) * USECS_PER_SEC;
	md_fetch_set_price(f,
					   DatumGetNumeric(DirectFunctionCall2(numeric_round,
														   DirectFunctionCall1(float8_numeric, Float8GetDatum(price)),
														   Int32GetDatum(4))),
					   "USD");
	f->volume = int64_to_numeric(md_walk_volume(&walk, minutes));
	f->responded = true;
	f->url = psprintf("sandbox:%s", f->symbol);
	f->http_status = 200;
	f->latency_ms = 0;
	f->body = psprintf("{\"symbol\":\"%s\",\"price\":%s,\"t\":" INT64_FORMAT ",\"model\":\"seeded random walk\"}",
					   f->symbol, numeric_normalize(f->price),
					   (int64) (SANDBOX_ORIGIN + minutes * 60));
	f->body_len = strlen(f->body);
}

const MdProvider md_provider_sandbox = {
	.name = "sandbox",
	.needs_key = false,
	.answer = sandbox_answer,
};
