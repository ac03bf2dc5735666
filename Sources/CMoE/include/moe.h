/*
 * moe.h — the C API of swift-moe, an embeddable mixture-of-experts inference runtime.
 *
 * Conventions (they hold for every function in this header):
 * - Every fallible call returns a moe_status; MOE_STATUS_OK is 0. Results come back through
 *   out-parameters, which are written only on success.
 * - moe_status_string(status) names a status; moe_last_error() gives the detail of the most
 *   recent failure on the calling thread (valid until the thread's next failing call).
 * - Handles are opaque. Every *_free function accepts NULL and does nothing. The library keeps a
 *   table of live handles: a freed handle, a handle of another kind or a pointer it never gave
 *   out is answered with MOE_STATUS_INVALID_ARGUMENT (and a second free is ignored), unless the
 *   memory has since been reused for a new handle of the same kind.
 * - Parameter structs start with a `size` field set by their *_default_params() function, so
 *   the struct can grow without breaking callers compiled against an older header.
 *
 * Threading: a moe_model may be shared by any number of threads for the read-only calls
 * documented as such; moe_model_free must not race with any other call on that model.
 */
#ifndef MOE_H
#define MOE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOE_VERSION_MAJOR 0
#define MOE_VERSION_MINOR 1
#define MOE_VERSION_PATCH 0
#define MOE_VERSION_STRING "0.1.0"

/** Status codes. Values are stable; new ones may be added. */
typedef int32_t moe_status;
#define MOE_STATUS_OK 0
#define MOE_STATUS_INVALID_ARGUMENT 1  /* a NULL pointer, a bad size, a value out of range */
#define MOE_STATUS_IO 2                /* the OS refused to open, stat, map or read a file */
#define MOE_STATUS_INVALID_FILE 3      /* the file is not a valid GGUF file */
#define MOE_STATUS_UNSUPPORTED 4       /* valid, but uses a version/type/architecture not supported */
#define MOE_STATUS_OUT_OF_MEMORY 5
#define MOE_STATUS_NOT_FOUND 6         /* a metadata key or tensor is missing */
#define MOE_STATUS_TYPE_MISMATCH 7     /* a metadata value has another type than asked for */
#define MOE_STATUS_CANCELLED 8
#define MOE_STATUS_INTERNAL 9

/** The library's version string ("0.1.0"); static storage, never NULL. Thread-safe. */
const char *moe_version(void);

/** A short static description of a status ("invalid file"); never NULL. Thread-safe. */
const char *moe_status_string(moe_status status);

/**
 * The message of the most recent failing call on the calling thread, naming the file, key or
 * tensor involved; "" when none. Owned by the library, valid until this thread's next call.
 */
const char *moe_last_error(void);

/** An open model file. Opaque. */
typedef struct moe_model moe_model;
/**
 * The message of the most recent failing call made with `model` (from any thread); "" when none
 * or when `model` is NULL or not a live model. Owned by the library, valid until the next failing
 * call with that model or until it is freed.
 */
const char *moe_model_last_error(const moe_model *model);

/** Options for moe_model_load. Initialise with moe_model_default_params(). */
typedef struct moe_model_params {
    uint32_t size;      /* sizeof(moe_model_params), set by moe_model_default_params */
    int32_t n_threads;  /* default threads of this model's sessions (a session's own n_threads wins);
                           0 = one per core */
    uint64_t expert_memory; /* expert store budget in bytes; 0 = none (experts read from the
                               mapped file). With a budget, routed experts are served from that many
                               bytes of RAM slots and read from the file on demand; a budget below
                               one layer's n_expert_used experts fails the load (INVALID_ARGUMENT). */
    int32_t mmap_prefetch;  /* nonzero: ask the OS to read the file ahead (madvise WILLNEED) at
                               load, so the first tokens do not wait on page faults (with a budget:
                               only the tensors that stay mapped); default 0 */
    int32_t expert_policy;  /* with a budget: MOE_EXPERT_POLICY_LRU (default) or _LFU */
    int32_t expert_prefetch;    /* with a budget: nonzero (default) predicts each layer's experts
                                   and reads them ahead */
    int32_t expert_io_threads;  /* with a budget: threads reading experts; 0 = default (4) */
    const char *expert_profile; /* with a budget: NULL, or the path of a usage.csv written by
                                   `moe profile` that seeds the budget's split across layers */
} moe_model_params;

/** Eviction policies of the expert store (moe_model_params.expert_policy). */
enum {
    MOE_EXPERT_POLICY_LRU = 0, /* evict the least recently used expert */
    MOE_EXPERT_POLICY_LFU = 1  /* evict the least frequently used (counts halve every 2 x n_expert uses) */
};

/** The default options. */
moe_model_params moe_model_default_params(void);

/**
 * Opens and validates the GGUF file at `path` (maps it; reads no tensor data). On success
 * writes a new handle to *out, which the caller frees with moe_model_free. `params` may be
 * NULL for the defaults. Thread-safe.
 */
moe_status moe_model_load(const char *path, const moe_model_params *params, moe_model **out);

/** Frees a model; NULL is a no-op. No other call on this model may be running. */
void moe_model_free(moe_model *model);

/**
 * Copies metadata value `key` as text into `buf` (NUL-terminated, at most `buf_size` bytes)
 * and writes the full length (without the NUL) to *needed. Keys may use "{arch}" for the
 * architecture. A `buf` too small gives MOE_STATUS_INVALID_ARGUMENT with *needed set, so the
 * caller can retry; buf may be NULL when buf_size is 0. Thread-safe.
 */
moe_status moe_model_meta_string(const moe_model *model, const char *key, char *buf, size_t buf_size, size_t *needed);

/** The number of tensors in the file, through *out. Thread-safe. */
moe_status moe_model_tensor_count(const moe_model *model, int64_t *out);

/**
 * The vocabulary size (the number of logits per position) through *out. Fails with
 * MOE_STATUS_UNSUPPORTED when the file's architecture cannot run (see moe_last_error). Thread-safe.
 */
moe_status moe_model_vocab_size(const moe_model *model, int64_t *out);

/**
 * One sequence being evaluated: KV cache, position, logits of the last evaluation, and its own
 * worker threads. Opaque. A session keeps its model alive: moe_model_free may be called while
 * sessions exist. Use a session from one thread at a time; different sessions of one model may
 * run on different threads at once.
 */
typedef struct moe_session moe_session;
/** The message of the most recent failing call made with `session`; "" when none. Valid until the next failing call with it or until it is freed. */
const char *moe_session_last_error(const moe_session *session);


/** Options for moe_session_new. Initialise with moe_session_default_params(). */
typedef struct moe_session_params {
    uint32_t size;      /* sizeof(moe_session_params), set by moe_session_default_params */
    int32_t n_ctx;      /* the most tokens the session holds; default 4096 */
    int32_t n_threads;  /* threads computing this session, the caller included; 0 = one per core */
} moe_session_params;

/** The default options. */
moe_session_params moe_session_default_params(void);

/**
 * Creates a session on `model` (params may be NULL for the defaults) and writes it to *out; the
 * caller frees it with moe_session_free. MOE_STATUS_UNSUPPORTED if the architecture cannot run,
 * MOE_STATUS_OUT_OF_MEMORY if the KV cache for n_ctx would be too large. Thread-safe.
 */
moe_status moe_session_new(moe_model *model, const moe_session_params *params, moe_session **out);

/** Frees a session; NULL is a no-op. No other call on this session may be running. */
void moe_session_free(moe_session *session);

/**
 * Evaluates n_tokens token ids at the session's next positions (a prompt in one call, or one
 * token at a time) and keeps their logits: every position's when all_logits is nonzero, else the
 * last position's. A bad id, n_tokens == 0 or a context overflow gives MOE_STATUS_INVALID_ARGUMENT
 * and evaluates nothing (the position and previous logits are kept).
 */
moe_status moe_session_eval(moe_session *session, const int32_t *tokens, size_t n_tokens, int32_t all_logits);

/**
 * Evaluates one token for each of n sessions in a single pass (batched decode): token i at
 * sessions[i]'s next position, against its own KV cache. Every weight is read once for the whole
 * batch (with more than two threads and no expert budget the batch runs as two halves half a layer
 * apart, one half's attention overlapping the other's experts, and an expert both halves chose is
 * read once per half; otherwise every chosen expert once for all); each session keeps its logits as
 * moe_session_eval(session, &token, 1, 0) would (read them with moe_session_logits), bit for bit.
 * Runs on sessions[0]'s threads. The sessions must be distinct, on one model, at most 64, each
 * with room for one more token; a bad batch (or a NULL, freed or foreign handle) gives
 * MOE_STATUS_INVALID_ARGUMENT and evaluates nothing. Errors are recorded on sessions[0]
 * (moe_session_last_error) and as the thread's last error.
 */
moe_status moe_session_eval_batch(moe_session *const *sessions, const int32_t *tokens, size_t n);

/**
 * Copies the logits of the last moe_session_eval into buf (n_vocab floats, or n_tokens * n_vocab
 * position by position) and writes their count to *needed (may be NULL). A buf_len too small gives
 * MOE_STATUS_INVALID_ARGUMENT with *needed set; buf may be NULL when buf_len is 0.
 */
moe_status moe_session_logits(const moe_session *session, float *buf, size_t buf_len, size_t *needed);

/** The number of tokens evaluated so far (the next position), through *out. */
moe_status moe_session_position(const moe_session *session, int64_t *out);

/** Keeps the first n_keep tokens and forgets the rest (0 resets the session). */
moe_status moe_session_truncate(moe_session *session, int64_t n_keep);

/** Forgets every token of the session (position 0); its expert counts are kept. */
moe_status moe_session_reset(moe_session *session);

/* ---------------------------------------------------------------------------------------------
 * Text: tokenizer. All of these are read-only on the model and thread-safe. The tokenizer is
 * built from the file's vocabulary on first use (MOE_STATUS_UNSUPPORTED for vocabularies other
 * than byte-level BPE "gpt2" and SentencePiece "llama", MOE_STATUS_INVALID_FILE for broken ones).
 * ------------------------------------------------------------------------------------------- */

/** Facts about the vocabulary. Set `size` to sizeof(moe_vocab_info) before the call. */
typedef struct moe_vocab_info {
    uint32_t size;        /* set by the caller: sizeof(moe_vocab_info) */
    int32_t n_vocab;      /* number of tokens */
    int32_t bos;          /* beginning-of-sequence token, or -1 */
    int32_t eos;          /* end-of-sequence token, or -1 */
    int32_t eot;          /* end-of-turn token, or -1 */
    int32_t add_bos;      /* nonzero when tokenizing with add_special puts BOS first */
} moe_vocab_info;

/** Fills *info (fields up to info->size). */
moe_status moe_vocab_get_info(const moe_model *model, moe_vocab_info *info);

/**
 * Tokenizes `text_len` bytes of UTF-8 `text` into `tokens` (room for `n_max`) and writes the
 * count to *n_needed. add_special adds BOS/EOS as the vocabulary asks; parse_special turns
 * control-token text ("<|im_start|>") into those tokens. If n_max is too small the call fails
 * with MOE_STATUS_INVALID_ARGUMENT and *n_needed says how many are needed (tokens may be NULL
 * when n_max is 0).
 */
moe_status moe_tokenize(const moe_model *model, const char *text, size_t text_len, int32_t add_special,
                        int32_t parse_special, int32_t *tokens, size_t n_max, size_t *n_needed);

/**
 * The bytes `token` prints as, copied to `buf` and NUL-terminated; *needed gets the byte count
 * without the NUL. The bytes may be part of a UTF-8 character (a byte token). Control tokens
 * print nothing unless `special` is nonzero. A buffer too small fails with *needed set.
 */
moe_status moe_token_to_piece(const moe_model *model, int32_t token, int32_t special, char *buf, size_t buf_size,
                              size_t *needed);

/**
 * The text of `n_tokens` tokens, NUL-terminated in `buf`, invalid UTF-8 replaced by U+FFFD;
 * *needed gets the byte count without the NUL. A buffer too small fails with *needed set.
 */
moe_status moe_detokenize(const moe_model *model, const int32_t *tokens, size_t n_tokens, int32_t special, char *buf,
                          size_t buf_size, size_t *needed);

/** Writes 1 to *out when `token` ends generation (EOS, EOT, ...), else 0. */
moe_status moe_token_is_eog(const moe_model *model, int32_t token, int32_t *out);

/* ---------------------------------------------------------------------------------------------
 * Sampling and generation
 * ------------------------------------------------------------------------------------------- */

/** How the next token is chosen. Initialise with moe_sampler_default_params(). */
typedef struct moe_sampler_params {
    uint32_t size;              /* sizeof(moe_sampler_params), set by moe_sampler_default_params */
    float temperature;          /* 0 or less = greedy; default 0.8 */
    int32_t top_k;              /* 0 = off; default 40 */
    float top_p;                /* 1 = off; default 0.95 */
    float min_p;                /* 0 = off; default 0.05 */
    float repeat_penalty;       /* 1 = off */
    float frequency_penalty;    /* 0 = off */
    float presence_penalty;     /* 0 = off */
    int32_t penalty_last_n;     /* window of recent tokens the penalties look at; default 64 */
    uint64_t seed;              /* the same seed gives the same tokens; default 0 */
} moe_sampler_params;

/** The default options. */
moe_sampler_params moe_sampler_default_params(void);

/** A sampler: its options, random state and recent tokens. Opaque; one thread at a time. */
typedef struct moe_sampler moe_sampler;

/** Creates a sampler (params may be NULL for the defaults); MOE_STATUS_INVALID_ARGUMENT for an option out of range. */
moe_status moe_sampler_new(const moe_sampler_params *params, moe_sampler **out);
/** Frees a sampler; NULL is a no-op. */
void moe_sampler_free(moe_sampler *sampler);
/** Picks a token from n_logits logits (one per vocabulary entry) and writes it to *out. */
moe_status moe_sampler_sample(moe_sampler *sampler, const float *logits, size_t n_logits, int32_t *out);
/** Records a token (given or generated) for the penalties. */
moe_status moe_sampler_accept(moe_sampler *sampler, int32_t token);

/**
 * Receives each complete piece of UTF-8 text as it is generated (`len` bytes, NUL-terminated,
 * valid only during the call). Return nonzero to go on, 0 to stop the generation.
 */
typedef int32_t (*moe_piece_callback)(const char *piece, size_t len, void *user_data);

/** Why a generation ended. */
typedef int32_t moe_stop_reason;
#define MOE_STOP_EOG 0          /* the model produced an end-of-generation token */
#define MOE_STOP_LENGTH 1       /* n_predict tokens were generated */
#define MOE_STOP_STRING 2       /* a stop string appeared (it is not passed to the callback) */
#define MOE_STOP_CONTEXT 3      /* the session's context is full */
#define MOE_STOP_CALLBACK 4     /* the callback returned 0 */

/** Options for moe_generate. Initialise with moe_generate_default_params(). */
typedef struct moe_generate_params {
    uint32_t size;                  /* sizeof(moe_generate_params), set by moe_generate_default_params */
    int32_t n_predict;              /* the most tokens to generate; default 128 */
    moe_sampler_params sampler;     /* sampling options; default moe_sampler_default_params() */
    int32_t add_special;            /* add BOS/EOS as the vocabulary asks (only at position 0); default 1 */
    int32_t parse_special;          /* parse control-token text in the prompt; default 0 */
    int32_t stop_at_eog;            /* stop at end-of-generation tokens; default 1 */
    const char *const *stop;        /* stop strings (may be NULL), borrowed for the call */
    size_t n_stop;                  /* how many stop strings */
} moe_generate_params;

/** The default options. */
moe_generate_params moe_generate_default_params(void);

/** What a generation did. Set `size` to sizeof(moe_generate_result) before the call. */
typedef struct moe_generate_result {
    uint32_t size;              /* set by the caller: sizeof(moe_generate_result) */
    int32_t n_prompt;           /* prompt tokens evaluated */
    int32_t n_generated;        /* tokens generated */
    moe_stop_reason stop_reason;
    double prompt_seconds;      /* time evaluating the prompt */
    double decode_seconds;      /* time generating */
} moe_generate_result;

/**
 * Tokenizes `prompt` (NUL-terminated UTF-8), evaluates it after what the session holds, and
 * generates, passing each piece of text to `callback` (may be NULL). The session keeps every
 * token, so a later call continues the same text. `params` and `result` may be NULL. A callback
 * that returns 0 ends the call with MOE_STATUS_OK and stop_reason MOE_STOP_CALLBACK. The session
 * must not be used by another thread during the call; the callback must not call into the same
 * session.
 */
moe_status moe_generate(moe_session *session, const char *prompt, const moe_generate_params *params,
                        moe_piece_callback callback, void *user_data, moe_generate_result *result);

/* ---------------------------------------------------------------------------------------------
 * Expert utilization
 * ------------------------------------------------------------------------------------------- */

/**
 * What the expert store did (moe_model_params.expert_memory), in total or for one layer. Set
 * `size` to sizeof(moe_expert_store_stats) before the call; counters are shared by every session
 * of the model.
 */
typedef struct moe_expert_store_stats {
    uint32_t size;                /* set by the caller: sizeof(moe_expert_store_stats) */
    uint64_t hits;                /* chosen experts that were resident (or arriving from a prefetch) */
    uint64_t misses;              /* chosen experts read when needed */
    uint64_t prefetch_hits;       /* hits a prefetch brought in (a subset of hits) */
    uint64_t prefetches;          /* reads started by prefetching */
    uint64_t wasted_prefetches;   /* prefetched experts evicted before any use */
    uint64_t bytes_read;          /* bytes read from the file into slots */
    uint64_t stall_ns;            /* nanoseconds computing threads waited for reads or slots */
    uint64_t predicted;           /* experts predicted before the router ran */
    uint64_t predicted_correctly; /* of those, chosen by the router (precision = this / predicted) */
    uint64_t chosen_after_prediction; /* chosen where a prediction was made (recall = correct / this) */
    uint64_t resident_slots;      /* slots holding experts now */
    uint64_t slots;               /* total: all slots in the budget; a layer: its current quota */
    uint64_t slot_bytes;          /* bytes per slot */
} moe_expert_store_stats;

/**
 * The expert store's counters: summed over layers when `layer` is -1, else that layer's.
 * MOE_STATUS_NOT_FOUND when the model was loaded without expert_memory.
 */
moe_status moe_model_expert_store_stats(const moe_model *model, int32_t layer, moe_expert_store_stats *stats);

/** Zeroes the expert store's counters (resident experts stay). NOT_FOUND without a store. */
moe_status moe_model_reset_expert_store_stats(moe_model *model);

/** The model's expert layout. Set `size` to sizeof(moe_expert_info) before the call. */
typedef struct moe_expert_info {
    uint32_t size;          /* set by the caller: sizeof(moe_expert_info) */
    int32_t n_layer;        /* transformer blocks */
    int32_t n_expert;       /* routed experts per layer (0 for a dense model) */
    int32_t n_expert_used;  /* experts each token uses per layer */
} moe_expert_info;

/** Fills *info (fields up to info->size). MOE_STATUS_UNSUPPORTED when the model cannot run. */
moe_status moe_model_expert_info(const moe_model *model, moe_expert_info *info);

/**
 * How many times each routed expert was chosen by the session's tokens since it was created (or
 * since moe_session_reset_expert_counts): n_layer * n_expert counts, layer-major, copied to
 * `counts` (room for `n_max`); *n_needed gets the count. Each evaluated token adds n_expert_used
 * per layer. A buffer too small fails with *n_needed set. Call it between evaluations.
 */
moe_status moe_session_expert_counts(const moe_session *session, uint64_t *counts, size_t n_max, size_t *n_needed);

/** Sets the session's expert counts to zero. */
moe_status moe_session_reset_expert_counts(moe_session *session);

/**
 * Turns recording of every routing decision on (nonzero) or off for the session. Off by default;
 * while off, the forward pass records nothing. Turning it on does not clear earlier records.
 */
moe_status moe_session_record_routing(moe_session *session, int32_t enable);

/**
 * Copies the recorded routing decisions: for each evaluated token (in order), for each layer, the
 * n_expert_used chosen expert ids (`ids`) and their routing weights (`weights`, may be NULL), so
 * n = tokens * n_layer * n_expert_used entries each. *n_needed gets n. A buffer too small
 * (n_max < n) fails with *n_needed set; call with n_max = 0 to ask.
 */
moe_status moe_session_routing_trace(const moe_session *session, int32_t *ids, float *weights, size_t n_max,
                                     size_t *n_needed);

/** Forgets the recorded routing decisions. */
moe_status moe_session_clear_routing_trace(moe_session *session);

#ifdef __cplusplus
}
#endif
#endif /* MOE_H */
