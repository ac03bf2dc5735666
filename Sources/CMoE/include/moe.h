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

#ifdef __cplusplus
}
#endif
#endif /* MOE_H */
