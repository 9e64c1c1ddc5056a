/* Models and adapters. A model owns its parameter store (Hugging Face names ->
 * tensors, mmapped from a checkpoint or owned), its config.json text and path,
 * and the adapters attached to its linear layers, one of them active. An
 * adapter is a named set of per-target LoRA factors (A [r, in], B [out, r],
 * DoRA's magnitude [out]) with its rank, alpha, scaling, dropout and enabled
 * flag, merged into and unmerged from the base weights here. The forward is not
 * here: it is composed in Lua from ops by the model's family module, so a user
 * can write a family in Lua. Names are kept sorted (binary search, and the
 * order every listing and checkpoint uses). */
#ifndef LFL_MODEL_H
#define LFL_MODEL_H

#include <stdbool.h>
#include "tensor.h"

typedef struct {
    char *module;          /* "model.layers.0.self_attn.q_proj" */
    lfl_tensor *A, *B;     /* A [r, in], B [out, r] */
    lfl_tensor *magnitude; /* DoRA: [out], else NULL */
    lfl_tensor *merged_norm; /* DoRA while merged: the row norms the merge divided by */
} lfl_adapter_target;

typedef struct lfl_adapter {
    int refcount;
    char *name;
    int r;
    double alpha, scaling, dropout;
    bool use_rslora, use_dora, enabled, merged;
    int n, cap;
    lfl_adapter_target *t; /* sorted by module */
    unsigned gen;          /* bumped when a target is added, replaced or removed */
} lfl_adapter;

typedef struct lfl_model {
    int refcount;
    int n, cap;
    char **names;          /* sorted */
    lfl_tensor **params;   /* params[i] belongs to names[i] */
    char *config_json;
    char *path;
    unsigned gen;          /* bumped when a name is added or removed */
    int n_adapters;
    lfl_adapter **adapters;
    int active;            /* index into adapters, -1 for none */
} lfl_model;

/* alpha / r, or alpha / sqrt(r) with rsLoRA */
double lfl_adapter_scaling(int r, double alpha, bool use_rslora);
lfl_status lfl_adapter_new(const char *name, int r, double alpha, bool use_rslora, bool use_dora,
                           double dropout, lfl_adapter **out);
lfl_adapter *lfl_adapter_retain(lfl_adapter *a);
void lfl_adapter_release(lfl_adapter *a);
/* Adds or replaces the factors of `module` (retains them); magnitude may be NULL
 * and must be given exactly when the adapter is DoRA. */
lfl_status lfl_adapter_set(lfl_adapter *a, const char *module, lfl_tensor *A, lfl_tensor *B,
                           lfl_tensor *magnitude);
const lfl_adapter_target *lfl_adapter_find(const lfl_adapter *a, const char *module);
lfl_status lfl_adapter_remove(lfl_adapter *a, const char *module);
int64_t lfl_adapter_num_parameters(const lfl_adapter *a);

lfl_status lfl_model_new(lfl_model **out);
lfl_model *lfl_model_retain(lfl_model *m);
void lfl_model_release(lfl_model *m);
/* Adds or replaces a parameter (retains t); t == NULL removes the name. */
lfl_status lfl_model_set(lfl_model *m, const char *name, lfl_tensor *t);
lfl_tensor *lfl_model_get(const lfl_model *m, const char *name); /* borrowed, NULL if absent */
lfl_status lfl_model_set_text(char **field, const char *text);   /* config_json, path */
/* Elements of the parameters, a tensor shared under two names (tied
 * embeddings) counted once; adapters are not counted. */
int64_t lfl_model_num_parameters(const lfl_model *m);
/* Every floating parameter to dtype `dt` (f32, f64, bf16, f16): to a 16-bit
 * type only the weight matrices (2-D and more) change, vectors (norms,
 * biases) become f32, as the loader keeps them. */
lfl_status lfl_model_to_dtype(lfl_model *m, lfl_dtype dt);
lfl_status lfl_model_to_device(lfl_model *m, int device);

/* Adapters: attach (replacing one of the same name; the first attached becomes
 * active), detach, activate (NULL: none active), look up. */
lfl_status lfl_model_attach(lfl_model *m, lfl_adapter *a);
lfl_status lfl_model_detach(lfl_model *m, const char *name);
lfl_status lfl_model_activate(lfl_model *m, const char *name);
lfl_adapter *lfl_model_adapter(const lfl_model *m, const char *name); /* borrowed */
lfl_adapter *lfl_model_active(const lfl_model *m);                   /* borrowed, may be NULL */
/* W += scaling B A for each target (DoRA: W = m * (W + s B A) / ||W + s B A||_row),
 * in f32 and stored back in W's dtype; the adapter stays attached, marked
 * merged (a forward must not apply it again). Unmerge restores W (up to
 * rounding). */
lfl_status lfl_model_merge(lfl_model *m, const char *name);
lfl_status lfl_model_unmerge(lfl_model *m, const char *name);

#endif
