/* clip: one prompt clip from a file or a type 10 text, and the clip's
 * reference count (prompt_clip_unref, its one destructor). Owns the audio
 * conversions every clip goes through: decoding with libsndfile (after a
 * look at the header's length against max_prompt_seconds), downmix,
 * resampling to 8 kHz mono with libsamplerate, padding to whole 20 ms
 * frames, G.711 encoding. Nothing here is shared: it runs on the worker
 * threads (work.c) as well as on the main thread, and the clips it makes
 * belong to the caller until the prompt cache adopts them. */
#include "clip.h"

#include <limits.h>
#include <math.h>
#include <samplerate.h>
#include <sndfile.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "g711.h"
#include "log.h"
#include "tts.h"

#define PROMPT_RATE 8000

struct prompt_clip *prompt_clip_ref(struct prompt_clip *clip)
{
    clip->refs++;
    return clip;
}

void prompt_clip_unref(struct prompt_clip *clip)
{
    if (!clip || --clip->refs > 0)
        return;
    free(clip->path);
    free(clip->pcm);
    free(clip->alaw);
    free(clip->ulaw);
    free(clip);
}

/* Samples needed to hold n whole or partial 20 ms frames. */
static size_t prompt_padded(size_t n)
{
    return (n + PROMPT_FRAME_SAMPLES - 1) / PROMPT_FRAME_SAMPLES *
           PROMPT_FRAME_SAMPLES;
}

/* The step every clip's audio takes, whether decoded from a file or
 * synthesised: n mono samples in [-1, 1] at rate become the line format,
 * 8 kHz 16-bit (resampled with libsamplerate unless already 8 kHz,
 * clipped), in *out zero padded (silence) to *n_frames whole frames. buf
 * stays the caller's. */
static int prompt_to_line(const float *buf, size_t n, int rate,
                          const char *name, int16_t **out, size_t *n_frames,
                          struct rpc_error *err)
{
    float *res = NULL;
    int16_t *pcm;

    if (rate != PROMPT_RATE && n > 0) {
        SRC_DATA sd = {0};
        int e;

        sd.src_ratio = (double)PROMPT_RATE / rate;
        sd.input_frames = (long)n;
        sd.output_frames = (long)ceil(n * sd.src_ratio) + 16;
        res = malloc((size_t)sd.output_frames * sizeof *res);
        if (!res)
            return rpc_fail(err, RPC_INTERNAL_ERROR,
                            "out of memory loading %s", name);
        sd.data_in = buf;
        sd.data_out = res;
        e = src_simple(&sd, SRC_SINC_MEDIUM_QUALITY, 1);
        if (e) {
            free(res);
            return rpc_fail(err, RPC_INVALID_PARAMS,
                            "play_content: cannot resample %s: %s", name,
                            src_strerror(e));
        }
        n = (size_t)sd.output_frames_gen;
        buf = res;
    }
    if (n == 0) {
        free(res);
        return rpc_fail(err, RPC_INVALID_PARAMS, "play_content: no audio in %s",
                        name);
    }
    pcm = calloc(prompt_padded(n), sizeof *pcm);
    if (!pcm) {
        free(res);
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory loading %s",
                        name);
    }
    for (size_t i = 0; i < n; i++) {
        long v = lrintf(buf[i] * 32768.0f);

        pcm[i] = (int16_t)(v > INT16_MAX   ? INT16_MAX
                           : v < INT16_MIN ? INT16_MIN
                                           : v);
    }
    free(res);
    *out = pcm;
    *n_frames = prompt_padded(n) / PROMPT_FRAME_SAMPLES;
    return 0;
}

/* The header says how long the file is: a file that claims hours (a 2 GB
 * sparse WAV) is refused before a single sample is read. */
static bool clip_too_long(const SF_INFO *info, const char *name, size_t item,
                          unsigned max_seconds, struct rpc_error *err)
{
    double secs = (double)info->frames / info->samplerate;

    if (max_seconds == 0 || secs <= (double)max_seconds)
        return false;
    if (item == CLIP_NO_ITEM)
        rpc_fail(err, RPC_INVALID_PARAMS,
                 "play_content: %s is %.0f s long, over max_prompt_seconds %u",
                 name, secs, max_seconds);
    else
        rpc_fail(err, RPC_INVALID_PARAMS,
                 "play_content[%zu]: %s is %.0f s long, over "
                 "max_prompt_seconds %u",
                 item, name, secs, max_seconds);
    return true;
}

int clip_check_length(const char *path, const char *name, size_t item,
                      unsigned max_seconds, struct rpc_error *err)
{
    SF_INFO info = {0};
    SNDFILE *sf;
    bool too_long;

    if (max_seconds == 0)
        return 0;
    sf = sf_open(path, SFM_READ, &info);
    if (!sf) /* clip_from_file says why, with the rest of the errors */
        return 0;
    too_long = info.samplerate > 0 &&
               clip_too_long(&info, name, item, max_seconds, err);
    sf_close(sf);
    return too_long ? -1 : 0;
}

/* Reads the whole file as 8 kHz mono int16 samples into *out, zero padded
 * (silence) to a whole number of frames. */
static int clip_decode(const char *path, const char *name, size_t item,
                       unsigned max_seconds, int16_t **out, size_t *n_frames,
                       struct rpc_error *err)
{
    SF_INFO info = {0};
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    float *buf = NULL;
    int16_t *pcm = NULL;
    size_t frames, ch, got;
    int rc = -1;

    if (!sf)
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: cannot decode %s: %s", name,
                        sf_strerror(NULL));
    if (info.frames <= 0 || info.channels <= 0 || info.samplerate <= 0)
        goto empty;
    /* frames * channels floats, plus the resampler's output, must not
     * overflow a size_t. */
    if ((uint64_t)info.frames > SIZE_MAX / sizeof(float) /
                                    (size_t)info.channels / 2) {
        rpc_fail(err, RPC_INVALID_PARAMS, "play_content: %s is too long",
                 name);
        goto out;
    }
    if (clip_too_long(&info, name, item, max_seconds, err))
        goto out;
    frames = (size_t)info.frames;

    if (info.samplerate == PROMPT_RATE && info.channels == 1) {
        /* Already the line format: read the samples themselves, so a 16-bit
         * file reaches the wire bit-exact. */
        pcm = calloc(prompt_padded(frames), sizeof *pcm);
        if (!pcm)
            goto oom;
        sf_command(sf, SFC_SET_CLIPPING, NULL, SF_TRUE);
        got = (size_t)sf_readf_short(sf, pcm, (sf_count_t)frames);
        if (got == 0)
            goto empty;
        *out = pcm;
        *n_frames = prompt_padded(got) / PROMPT_FRAME_SAMPLES;
        pcm = NULL;
        rc = 0;
        goto out;
    }
    ch = (size_t)info.channels;
    buf = malloc(frames * ch * sizeof *buf);
    if (!buf)
        goto oom;
    got = (size_t)sf_readf_float(sf, buf, (sf_count_t)frames);
    /* Downmix in place: frame i's average lands in buf[i]. */
    for (size_t i = 0; i < got && ch > 1; i++) {
        float sum = 0;

        for (size_t c = 0; c < ch; c++)
            sum += buf[i * ch + c];
        buf[i] = sum / (float)ch;
    }
    if (got == 0)
        goto empty;
    rc = prompt_to_line(buf, got, info.samplerate, name, out, n_frames, err);
    goto out;
empty:
    rpc_fail(err, RPC_INVALID_PARAMS, "play_content: no audio in %s", name);
    goto out;
oom:
    rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory loading %s", name);
out:
    free(pcm);
    free(buf);
    sf_close(sf);
    return rc;
}

/* A new clip with one reference, keyed key, from line-format samples
 * (taken over, freed on failure too), with their A-law and mu-law. */
static struct prompt_clip *prompt_clip_new(const char *key, const char *name,
                                           int16_t *pcm, size_t n_frames,
                                           struct rpc_error *err)
{
    struct prompt_clip *clip = calloc(1, sizeof *clip);
    size_t total = n_frames * PROMPT_FRAME_SAMPLES;

    if (!clip) {
        free(pcm);
        rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory loading %s", name);
        return NULL;
    }
    clip->refs = 1;
    clip->pcm = pcm;
    clip->n_frames = n_frames;
    clip->path = strdup(key);
    clip->alaw = malloc(total);
    clip->ulaw = malloc(total);
    if (!clip->path || !clip->alaw || !clip->ulaw) {
        prompt_clip_unref(clip);
        rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory loading %s", name);
        return NULL;
    }
    for (size_t i = 0; i < total; i++) {
        clip->alaw[i] = g711_alaw_encode(clip->pcm[i]);
        clip->ulaw[i] = g711_ulaw_encode(clip->pcm[i]);
    }
    return clip;
}

struct prompt_clip *clip_from_file(const char *path, const char *name,
                                   size_t item, unsigned max_seconds,
                                   struct rpc_error *err)
{
    size_t n_frames;
    int16_t *pcm;

    if (clip_decode(path, name, item, max_seconds, &pcm, &n_frames, err) < 0)
        return NULL;
    return prompt_clip_new(path, name, pcm, n_frames, err);
}

struct prompt_clip *clip_from_text(const char *key, enum speech_lang lang,
                                   const char *text, struct rpc_error *err)
{
    static const char name[] = "type 10 text";
    struct prompt_clip *clip;
    uint64_t t0 = clock_mono_ns();
    int16_t *samples, *pcm;
    size_t n, n_frames;
    float *buf;
    int rate, rc;

    if (tts_synth(lang, text, &samples, &n, &rate, err) < 0)
        return NULL;
    /* The scale libsndfile reads 16-bit files with, so speech converts
     * exactly as a WAV of the same samples would. */
    buf = malloc(n * sizeof *buf);
    if (!buf) {
        free(samples);
        rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory speaking");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = (float)samples[i] / 32768.0f;
    free(samples);
    rc = prompt_to_line(buf, n, rate, name, &pcm, &n_frames, err);
    free(buf);
    if (rc < 0)
        return NULL;
    clip = prompt_clip_new(key, name, pcm, n_frames, err);
    if (!clip)
        return NULL;
    /* How long a worker spent on it: worth seeing in the log. The text
     * itself is the caller's business and stays out of it. */
    log_info("tts: %s, %zu bytes of text: %zu frames (%.2f s) in %.1f ms",
             tts_voice(lang), strlen(text), clip->n_frames,
             (double)clip->n_frames * PROMPT_FRAME_SAMPLES / PROMPT_RATE,
             clock_ms_since(t0));
    return clip;
}

