/* Evaluate token ids with swift-moe's C API and print the five most likely next tokens.
 *
 *   swift build -c release --product moec
 *   cc examples/c/next_token.c -ISources/CMoE/include -L.build/release -lmoec \
 *      -Wl,-rpath,"$PWD/.build/release" -o next_token
 *   ./next_token Tests/Fixtures/forward/qwen3moe-q8_0.gguf 256 72 101 108 108 111
 */
#include <moe.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf TOKEN_ID...\n", argv[0]);
        return 2;
    }
    moe_model *model = NULL;
    moe_status status = moe_model_load(argv[1], NULL, &model);
    if (status != MOE_STATUS_OK) {
        fprintf(stderr, "load: %s: %s\n", moe_status_string(status), moe_last_error());
        return 1;
    }
    moe_session_params params = moe_session_default_params();
    params.n_ctx = 512;
    moe_session *session = NULL;
    status = moe_session_new(model, &params, &session);
    moe_model_free(model); /* the session keeps what it needs */
    if (status != MOE_STATUS_OK) {
        fprintf(stderr, "session: %s: %s\n", moe_status_string(status), moe_last_error());
        return 1;
    }

    size_t n = (size_t)(argc - 2);
    int32_t *tokens = malloc(n * sizeof *tokens);
    for (size_t i = 0; i < n; i++) tokens[i] = (int32_t)strtol(argv[i + 2], NULL, 10);
    status = moe_session_eval(session, tokens, n, 0);
    free(tokens);
    if (status != MOE_STATUS_OK) {
        fprintf(stderr, "eval: %s: %s\n", moe_status_string(status), moe_last_error());
        moe_session_free(session);
        return 1;
    }

    size_t n_vocab = 0;
    moe_session_logits(session, NULL, 0, &n_vocab); /* ask for the size first */
    float *logits = malloc(n_vocab * sizeof *logits);
    moe_session_logits(session, logits, n_vocab, &n_vocab);
    for (int rank = 0; rank < 5 && (size_t)rank < n_vocab; rank++) {
        size_t best = 0;
        for (size_t i = 1; i < n_vocab; i++) if (logits[i] > logits[best]) best = i;
        printf("%d. token %zu  logit %.4f\n", rank + 1, best, logits[best]);
        logits[best] = -1e30f;
    }
    free(logits);
    moe_session_free(session);
    return 0;
}
