/* bus: publication of the journaled events to a Redis stream (issue 15,
 * the events half; the requests half is busreq.h).
 * Every journal record goes to the stream PREFIX:events as fields node,
 * seq, method, params, exactly once per (node, seq): a cursor walks the
 * local journal, and a Lua script in Redis (BUS_PUBLISH_LUA) adds an entry
 * only when seq is above the node's last published seq, kept in the hash
 * PREFIX:published, and only when the previous command of the same chain
 * took effect, so neither a repeat (crash, reconnect) nor a gap (a failed
 * command followed by a good one) can happen. Its connection is an rlink
 * (rlink.h: hiredis' async API on the main loop; nothing blocks it).
 *
 * struct bus is opaque, owned by the server (bus_new / bus_free), and
 * used on the main thread only. It reads the journal it is given (which
 * the server owns) and never writes it. */
#ifndef CTID_BUS_H
#define CTID_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct conf;
struct journal;
struct bus;

/* KEYS[1] = PREFIX:events, KEYS[2] = PREFIX:published; ARGV = node, seq,
 * method, params, maxlen, prev (the seq the caller believes is the
 * node's last published). Returns the node's last published seq after
 * the call (seq when added, the stored one when seq is a repeat), or -1
 * when the stored seq is not prev (a command before it failed). */
extern const char BUS_PUBLISH_LUA[];

/* Starts publishing when conf->redis is set (NULL, and nothing done,
 * when it is empty). Connects in the background; a Redis that is down is
 * retried with backoff. conf and j must outlive the bus. */
struct bus *bus_new(struct event_base *base, const struct conf *conf,
                    struct journal *j);
/* Disconnects; NULL is fine. */
void bus_free(struct bus *b);
/* Seqs journaled and not yet confirmed by Redis (0 when b is NULL). */
uint64_t bus_lag(const struct bus *b);
/* Connected, authenticated and publishing. */
bool bus_connected(const struct bus *b);

/* Pure helpers (unit tests). Splits a journal line (an rpc_event_line:
 * {"jsonrpc":"2.0","method":M,"params":P}) into M and P's compact JSON
 * text, both malloc'ed (the caller frees). Returns 0 or -1. */
int bus_split_event(const char *line, size_t len, char **method,
                    char **params);
/* Where publication resumes: after Redis' last published seq, or before
 * the oldest seq the journal still holds when retention deleted some not
 * yet published (*lost: how many seqs were lost to the bus). first is
 * journal_first_seq (0: empty journal). */
uint64_t bus_resume_after(uint64_t published, uint64_t first, uint64_t *lost);

#endif
