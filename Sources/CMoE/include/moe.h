/*
 * moe.h — the C API of swift-moe, an embeddable mixture-of-experts inference runtime.
 *
 * Conventions (they hold for every function in this header):
 * - Every fallible call returns a moe_status; MOE_STATUS_OK is 0. Results come back through
 *   out-parameters, which are written only on success.
 * - moe_status_string(status) names a status; moe_last_error() gives the detail of the most
 *   recent failure on the calling thread (valid until the thread's next failing call).
 * - Handles are opaque. Every *_free function accepts NULL and does nothing.
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

/** Options for moe_model_load. Initialise with moe_model_default_params(). */
typedef struct moe_model_params {
    uint32_t size;      /* sizeof(moe_model_params), set by moe_model_default_params */
    int32_t n_threads;  /* worker threads; 0 = one per core */
} moe_model_params;

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
 * Copies the logits of the last moe_session_eval into buf (n_vocab floats, or n_tokens * n_vocab
 * position by position) and writes their count to *needed (may be NULL). A buf_len too small gives
 * MOE_STATUS_INVALID_ARGUMENT with *needed set; buf may be NULL when buf_len is 0.
 */
moe_status moe_session_logits(const moe_session *session, float *buf, size_t buf_len, size_t *needed);

/** The number of tokens evaluated so far (the next position), through *out. */
moe_status moe_session_position(const moe_session *session, int64_t *out);

/** Keeps the first n_keep tokens and forgets the rest (0 resets the session). */
moe_status moe_session_truncate(moe_session *session, int64_t n_keep);

#ifdef __cplusplus
}
#endif
#endif /* MOE_H */
