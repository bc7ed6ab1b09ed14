/*
 * api/src/stream.h
 *	What the files of GET /prices/stream share (stream.c, the route;
 *	stream_fanout.c, clients and delivery; stream_replay.c, resume;
 *	stream_limit.c, open streams counted in Redis; stream_ws.c,
 *	WebSocket messages). The words are stream.c's.
 */

#ifndef MD_STREAM_H
#define MD_STREAM_H

#include "api.h"

#define STREAM_SSE		1
#define STREAM_WS		2

#define SUB_BUCKETS		4096
#define HELD_MAX		10000
#define REPLAY_MAX_EVENTS	10000
#define KERNEL_SNDBUF		32768
#define ID_LEN			128

struct stream_client;

struct seen {
	char		provider[72];
	int64_t		ts;
};

struct stream_sub {
	LIST_ENTRY(stream_sub)	 bucket;
	struct stream_client	*client;
	char			 symbol[40];
	struct seen		*seen;		/* newest sent per provider */
	int			 nseen;
	char			*pending;	/* conflated payload */
	size_t			 pending_len;
};

struct held {
	TAILQ_ENTRY(held)	 list;
	struct stream_sub	*sub;
	char			 provider[72];
	int64_t			 ts;
	char			 id[ID_LEN];
	size_t			 len;
	char			 json[];
};

struct stream_client {
	TAILQ_ENTRY(stream_client)	 list;
	TAILQ_ENTRY(stream_client)	 full_list;
	struct connection		*c;
	int				 proto;
	int				 role;
	char				 ident[80];
	char				 ip[64];
	char				 member[64];	/* in the Redis limit sets */
	int				 limited;
	int				 admit;		/* the limits' answer */
	struct stream_sub		**subs;
	int				 nsubs;
	u_int64_t			 opened_us;	/* wall clock */
	char				 last_id[ID_LEN];
	int				 replaying;
	int				 replay_again;
	int				 gone;		/* closed; freed by the replay */
	int				 dead;		/* to be closed by the timer */
	TAILQ_HEAD(, held)		 held;
	int				 nheld;
	u_int64_t			 full_since;	/* ms, 0: not full */
	int				 npending;
};

/* one event on its way to the clients */
struct stream_event {
	const char	*symbol;
	char		 provider[72];
	int64_t		 ts;
	char		 id[ID_LEN];
	const char	*json;
	size_t		 len;
	struct kore_buf	 sse;
	struct kore_buf	 ws;
	int		 sse_built;
	int		 ws_built;
};

/* stream_fanout.c */
struct stream_sub	*stream_sub_find(struct stream_client *, const char *);
int			 stream_sub_add(struct stream_client *, const char *);
void			 stream_sub_free(struct stream_sub *);
void			 stream_sub_remove(struct stream_client *, const char *);
void			 stream_emit(struct stream_client *, const void *, size_t);
void			 stream_emit_control(struct stream_client *, const char *,
			    const char *);
void			 stream_mark_dead(struct stream_client *);
void			 stream_deliver(struct stream_sub *, struct stream_event *);
void			 stream_release_held(struct stream_client *);
void			 stream_event_cleanup(struct stream_event *);
int64_t			 stream_iso_us(const char *);
struct stream_client	*stream_client_new(struct api_ctx *, int);
void			 stream_client_discard(struct stream_client *);
void			 stream_client_close(struct stream_client *, const char *);
void			 stream_client_open(struct stream_client *,
			    struct connection *);
int			 stream_is_subscribed(void);
struct stream_client	*stream_clients(void);
void			 stream_fanout_init(void);

/* stream_replay.c */
int	stream_id_parse(const char *, int64_t *, char *, size_t, char *, size_t);
void	stream_replay_start(struct stream_client *, const char *);
void	stream_replay_init(void);

/* stream_limit.c */
int	stream_limit_check(struct stream_client *, void (*)(void *, void *),
	    void *);
void	stream_limit_refresh(struct stream_client *);
void	stream_limit_release(struct stream_client *);

/* stream_ws.c */
void	stream_ws_subscribed(struct stream_client *);

#endif
