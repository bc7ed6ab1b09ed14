/*-------------------------------------------------------------------------
 *
 * extension/kept_responses.c
 *	  Provider responses of a failing statement, kept until stored.
 *
 * md.raw_responses must hold every provider response, good or bad. When
 * md_price() fails (unknown symbol, provider down), the error rolls back
 * the rows it inserted with the rest of the statement. So before raising,
 * the responses (secrets already masked, ids already drawn from the
 * sequence) are copied into a ring buffer in shared memory, and the
 * scheduler of that database stores them in its next round with the same
 * ids (ON CONFLICT (id) DO NOTHING, should a row have survived after all).
 *
 * The ring holds MD_KEPT_BYTES; when full, the oldest entries are dropped
 * with a log line. A scheduler takes its database's entries from anywhere
 * in the ring and moves the others' up, in order: entries of a database
 * without a running scheduler wait (until the ring overflows) without
 * holding up any other database's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lwlock.h"

#include "raw_responses.h"
#include "kept_responses.h"
#include "shmem.h"
#include "wake.h"

#define MD_KEPT_BYTES (4 * 1024 * 1024)

/* an entry: this header, then provider, symbol, url, body, each NUL-ended */
typedef struct KeptHeader
{
	uint32		total;			/* bytes of the whole entry */
	Oid			dboid;
	int64		id;
	int32		http_status;
	int32		cls;
	double		latency_ms;
} KeptHeader;

typedef struct KeptRing
{
	uint64		head;			/* next byte to read (monotonic) */
	uint64		tail;			/* next byte to write (monotonic) */
	uint64		dropped;
	char		data[MD_KEPT_BYTES];
} KeptRing;

static KeptRing *ring = NULL;
static LWLock *ring_lock = NULL;

void
md_kept_responses_init(void)
{
	md_shmem_add("marketdata kept responses", sizeof(KeptRing), (void **) &ring,
				 &ring_lock, NULL);
}

/* copy in and out of the ring at a monotonic position, wrapping around */
static void
ring_write(uint64 pos, const void *src, Size len)
{
	Size		at = pos % MD_KEPT_BYTES;
	Size		first = Min(len, MD_KEPT_BYTES - at);

	memcpy(ring->data + at, src, first);
	memcpy(ring->data, (const char *) src + first, len - first);
}

static void
ring_read(uint64 pos, void *dst, Size len)
{
	Size		at = pos % MD_KEPT_BYTES;
	Size		first = Min(len, MD_KEPT_BYTES - at);

	memcpy(dst, ring->data + at, first);
	memcpy((char *) dst + first, ring->data, len - first);
}

static Size
text_size(const char *s)
{
	return (s ? strlen(s) : 0) + 1;
}

static char *
append_text(char *p, const char *s)
{
	Size		n = text_size(s);

	memcpy(p, s ? s : "", n);
	return p + n;
}

void
md_kept_responses_keep(MdFetch **fetches, int n)
{
	int			i;

	if (ring == NULL)
		return;
	for (i = 0; i < n; i++)
	{
		MdFetch    *f = fetches[i];
		KeptHeader h;
		char	   *entry;
		char	   *p;

		if (!f->responded || f->raw_response_id <= 0)
			continue;
		h.total = sizeof(KeptHeader) + text_size(f->provider) + text_size(f->symbol) +
			text_size(f->url) + text_size(f->body);
		if (h.total > MD_KEPT_BYTES / 4)
		{
			elog(LOG, "marketdata: response %lld of %s is too large to keep after the error",
				 (long long) f->raw_response_id, f->provider);
			continue;
		}
		h.dboid = MyDatabaseId;
		h.id = f->raw_response_id;
		h.http_status = (int32) f->http_status;
		h.cls = (int32) f->cls;
		h.latency_ms = f->latency_ms;
		entry = palloc(h.total);
		memcpy(entry, &h, sizeof(h));
		p = entry + sizeof(h);
		p = append_text(p, f->provider);
		p = append_text(p, f->symbol);
		p = append_text(p, f->url);
		append_text(p, f->body);

		LWLockAcquire(ring_lock, LW_EXCLUSIVE);
		/* make room: the oldest entries go */
		while (ring->tail - ring->head + h.total > MD_KEPT_BYTES)
		{
			KeptHeader old;

			ring_read(ring->head, &old, sizeof(old));
			ring->head += old.total;
			ring->dropped++;
		}
		ring_write(ring->tail, entry, h.total);
		ring->tail += h.total;
		LWLockRelease(ring_lock);
		pfree(entry);
	}
	md_wake("scheduler", MyDatabaseId);
}

int
md_kept_responses_store(void)
{
	List	   *entries = NIL;
	uint64		dropped;
	MdFetch   **kept;
	ListCell   *lc;
	int			n = 0;

	if (ring == NULL)
		return 0;
	LWLockAcquire(ring_lock, LW_EXCLUSIVE);
	{
		uint64		pos;
		uint64		others = 0;	/* bytes of other databases' entries */
		char	   *kept_back = NULL;
		bool		ours = false;

		/* the headers first: most rounds find nothing of theirs */
		for (pos = ring->head; pos < ring->tail && !ours;)
		{
			KeptHeader h;

			ring_read(pos, &h, sizeof(h));
			ours = (h.dboid == MyDatabaseId);
			pos += h.total;
		}
		for (pos = ring->head; ours && pos < ring->tail;)
		{
			KeptHeader h;
			char	   *entry;

			ring_read(pos, &h, sizeof(h));
			if (h.dboid != MyDatabaseId)
			{
				if (kept_back == NULL)
					kept_back = palloc(ring->tail - pos);
				ring_read(pos, kept_back + others, h.total);
				others += h.total;
			}
			else
			{
				entry = palloc(h.total);
				ring_read(pos, entry, h.total);
				entries = lappend(entries, entry);
			}
			pos += h.total;
		}
		/* the others, in their order, end where the ring ends */
		if (entries != NIL && others > 0)
			ring_write(ring->tail - others, kept_back, others);
		if (entries != NIL)
			ring->head = ring->tail - others;
	}
	dropped = ring->dropped;
	ring->dropped = 0;
	LWLockRelease(ring_lock);

	if (dropped > 0)
		elog(LOG, "marketdata: %llu kept responses were dropped: the ring was full",
			 (unsigned long long) dropped);
	if (entries == NIL)
		return 0;

	kept = palloc(sizeof(MdFetch *) * list_length(entries));
	foreach(lc, entries)
	{
		char	   *entry = lfirst(lc);
		KeptHeader h;
		MdFetch    *f = palloc0(sizeof(MdFetch));
		char	   *p = entry + sizeof(KeptHeader);

		memcpy(&h, entry, sizeof(h));
		f->raw_response_id = h.id;
		f->http_status = h.http_status;
		f->cls = (MdErrorClass) h.cls;
		f->latency_ms = h.latency_ms;
		f->provider = p;
		p += strlen(p) + 1;
		f->symbol = p;
		p += strlen(p) + 1;
		f->url = p;
		p += strlen(p) + 1;
		/* a transport failure had no body at all */
		f->body = (*p == '\0' && h.http_status == 0) ? NULL : p;
		f->responded = true;
		kept[n++] = f;
	}
	md_raw_responses_insert(kept, n);
	return n;
}
