/* Load a model and stream a generation with swift-moe's C API, then print expert usage.
 *
 *   swift build -c release --product moec
 *   cc examples/c/generate.c -ISources/CMoE/include -L.build/release -lmoec \
 *      -Wl,-rpath,"$PWD/.build/release" -o generate
 *   ./generate Models/demo-austen-moe.gguf "It is a truth universally acknowledged" 48
 *
 * Stops early when the callback has printed `limit` bytes: a callback returning 0 ends the
 * generation cleanly (stop reason MOE_STOP_CALLBACK).
 */
#include <moe.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    size_t printed;
    size_t limit;
} stream_state;

static int32_t on_piece(const char *piece, size_t len, void *user_data) {
    stream_state *state = user_data;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    state->printed += len;
    return state->printed < state->limit; /* 0 stops the generation */
}

static int fail(const char *what, moe_status status) {
    fprintf(stderr, "%s: %s: %s\n", what, moe_status_string(status), moe_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT [N_PREDICT] [BYTE_LIMIT]\n", argv[0]);
        return 2;
    }
    moe_model *model = NULL;
    moe_status status = moe_model_load(argv[1], NULL, &model);
    if (status != MOE_STATUS_OK) return fail("load", status);

    moe_session_params sp = moe_session_default_params();
    sp.n_ctx = 256;
    moe_session *session = NULL;
    status = moe_session_new(model, &sp, &session);
    if (status != MOE_STATUS_OK) { moe_model_free(model); return fail("session", status); }

    moe_generate_params gp = moe_generate_default_params();
    gp.n_predict = argc > 3 ? atoi(argv[3]) : 32;
    gp.sampler.temperature = 0; /* greedy: the same text every run */
    stream_state state = { 0, argc > 4 ? (size_t)atol(argv[4]) : (size_t)-1 };
    moe_generate_result result = { sizeof result, 0, 0, 0, 0, 0 };

    fputs(argv[2], stdout);
    status = moe_generate(session, argv[2], &gp, on_piece, &state, &result);
    putchar('\n');
    if (status != MOE_STATUS_OK) { moe_session_free(session); moe_model_free(model); return fail("generate", status); }
    fprintf(stderr, "prompt %d tokens, generated %d tokens (%.1f t/s), stop reason %d\n", result.n_prompt,
            result.n_generated, result.decode_seconds > 0 ? result.n_generated / result.decode_seconds : 0.0,
            result.stop_reason);

    moe_expert_info info = { sizeof info, 0, 0, 0 };
    if (moe_model_expert_info(model, &info) == MOE_STATUS_OK && info.n_expert > 0) {
        size_t n = 0;
        moe_session_expert_counts(session, NULL, 0, &n); /* ask for the size first */
        uint64_t *counts = calloc(n, sizeof *counts);
        moe_session_expert_counts(session, counts, n, &n);
        for (int l = 0; l < info.n_layer; l++) {
            int busiest = 0;
            uint64_t total = 0;
            for (int e = 0; e < info.n_expert; e++) {
                total += counts[l * info.n_expert + e];
                if (counts[l * info.n_expert + e] > counts[l * info.n_expert + busiest]) busiest = e;
            }
            fprintf(stderr, "layer %d: %llu choices, busiest expert %d (%llu)\n", l, (unsigned long long)total, busiest,
                    (unsigned long long)counts[l * info.n_expert + busiest]);
        }
        free(counts);
    }
    moe_session_free(session);
    moe_model_free(model);
    return 0;
}
