/* A complete C program using swift-moe's C API: open a GGUF model and describe it.
 *
 *   swift build -c release --product moec
 *   cc examples/c/model_info.c -ISources/CMoE/include -L.build/release -lmoec \
 *      -Wl,-rpath,"$PWD/.build/release" -o model_info
 *   ./model_info Tests/Fixtures/models/tiny-qwen3moe-q8_0.gguf
 */
#include <moe.h>
#include <stdio.h>
#include <stdlib.h>

/* Reads a metadata value as text, asking for the size first. Returns a malloc'd string or NULL. */
static char *meta(const moe_model *model, const char *key) {
    size_t needed = 0;
    moe_status status = moe_model_meta_string(model, key, NULL, 0, &needed);
    if (status != MOE_STATUS_OK && status != MOE_STATUS_INVALID_ARGUMENT) return NULL;
    char *text = malloc(needed + 1);
    if (text == NULL) return NULL;
    if (moe_model_meta_string(model, key, text, needed + 1, &needed) != MOE_STATUS_OK) {
        free(text);
        return NULL;
    }
    return text;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    printf("swift-moe %s\n", moe_version());

    moe_model_params params = moe_model_default_params();
    moe_model *model = NULL;
    moe_status status = moe_model_load(argv[1], &params, &model);
    if (status != MOE_STATUS_OK) {
        fprintf(stderr, "cannot load %s: %s: %s\n", argv[1], moe_status_string(status), moe_last_error());
        return 1;
    }

    const char *keys[] = {"general.architecture", "general.name", "{arch}.block_count",
                          "{arch}.expert_count", "{arch}.expert_used_count"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char *value = meta(model, keys[i]);
        printf("%-26s %s\n", keys[i], value ? value : "(absent)");
        free(value);
    }
    int64_t tensors = 0;
    if (moe_model_tensor_count(model, &tensors) == MOE_STATUS_OK) {
        printf("%-26s %lld\n", "tensors", (long long)tensors);
    }
    moe_model_free(model);
    return 0;
}
