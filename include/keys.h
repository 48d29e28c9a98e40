/* keys: the collection rules of construct's `keys` object (issue 14) as a
 * pure state machine: keys come in (from RFC 4733, INFO or in-band, it
 * does not matter which), the prompt ends, a wait runs out; each input
 * says what the call should do next.
 *
 * Ownership: struct keys is a plain value (no allocation) owned by the one
 * call that collects, on that call's thread (the main thread when wired);
 * dropping it is its release. The caller owns the timer behind
 * KEYS_DO_ARM_WAIT. Nothing in the daemon calls this module yet (issue
 * 14's building blocks). */
#ifndef CTID_KEYS_H
#define CTID_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYS_MAX 32
#define KEYS_MAX_WAIT 60
#define KEYS_DEFAULT_MAX 1
#define KEYS_DEFAULT_WAIT 5

/* The `keys` object's rules (api_ parses them). */
struct keys_rules {
    unsigned max;          /* 1..KEYS_MAX keys to collect */
    char end;              /* terminator key, not collected; '\0': none */
    bool stop_play;        /* the first key stops the prompt */
    unsigned wait_seconds; /* 0..KEYS_MAX_WAIT after the prompt */
    bool then;             /* a `then` play list was given */
};

/* max 1, no end key, stop_play, wait 5 s, no then. */
void keys_rules_default(struct keys_rules *r);

/* True for the 16 keys: 0-9 * # A-D. */
bool keys_valid(char key);

/* What the call should do, in this order when several are set. */
enum {
    KEYS_DO_STOP_PROMPT = 1 << 0, /* stop the prompt now */
    KEYS_DO_ARM_WAIT = 1 << 1,    /* (re)arm a wait_seconds timer that
                                     calls keys_timeout */
    KEYS_DO_PLAY_THEN = 1 << 2,   /* play `then` once, then keys_then_done */
    KEYS_DO_HANG_UP = 1 << 3,     /* end the call */
};

/* What one input did. */
struct keys_step {
    bool appended;     /* the key is now last in keys_text */
    bool completed;    /* this input completed the collection (max keys or
                          the end key) */
    unsigned actions;  /* KEYS_DO_* */
};

enum keys_phase {
    KEYS_PROMPT,   /* the prompt is playing */
    KEYS_WAITING,  /* after the prompt, waiting for keys */
    KEYS_THEN,     /* `then` is playing */
    KEYS_DONE,     /* hung up: every input is ignored */
};

struct keys {
    struct keys_rules rules;
    enum keys_phase phase;
    char text[KEYS_MAX + 1];  /* the keys collected, NUL-terminated */
    size_t n;
    bool pressed;             /* any key came, the end key included */
    bool complete;            /* max keys, or the end key */
    int64_t key_time;         /* Unix seconds of the first key; -1: none */
};

/* Starts a collection as the prompt starts playing. */
void keys_start(struct keys *k, const struct keys_rules *rules);

/* A key arrived at Unix time now. Keys outside 0-9 * # A-D, and keys
 * after the collection completed, change nothing. */
struct keys_step keys_key(struct keys *k, char key, int64_t now);
/* The prompt (all its plays) finished by itself. Ignored unless the
 * prompt phase is on (a prompt stopped by KEYS_DO_STOP_PROMPT is over for
 * the machine the moment it says so). */
struct keys_step keys_prompt_done(struct keys *k);
/* The wait timer ran out. Ignored unless waiting, so a stale timer does no
 * harm. */
struct keys_step keys_timeout(struct keys *k);
/* `then` finished playing. */
struct keys_step keys_then_done(struct keys *k);

/* The keys collected ("" when none) and the time of the first, -1 when
 * none: on_released's `keys` and `key_time`. */
const char *keys_text(const struct keys *k);
int64_t keys_first_time(const struct keys *k);

#endif
