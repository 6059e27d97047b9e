/* api.c: OpenAI's request bodies in (checked field by field: a known field
 * of the wrong type or out of range is a 400 naming it, null counts as
 * absent, unknown fields are ignored), prompts and chat messages to
 * tokens, and the response bodies and stream chunks out. */
#include "serve/serve_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void srv_set_error(srv_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...)
{
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void srv_error_json(lmc_sb *out, const srv_error *e)
{
    lmc_sb_puts(out, "{\"error\":{\"message\":");
    lmc_sb_json_str(out, e->message, strlen(e->message));
    lmc_sb_puts(out, ",\"type\":");
    lmc_sb_json_str(out, e->type, strlen(e->type));
    lmc_sb_puts(out, ",\"param\":");
    if (e->param[0])
        lmc_sb_json_str(out, e->param, strlen(e->param));
    else
        lmc_sb_puts(out, "null");
    lmc_sb_puts(out, ",\"code\":");
    if (e->code)
        lmc_sb_json_str(out, e->code, strlen(e->code));
    else
        lmc_sb_puts(out, "null");
    lmc_sb_puts(out, "}}");
}

static int bad(srv_error *e, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(srv_error *e, const char *param, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv_set_error(e, 400, "invalid_request_error", NULL, param, "%s", msg);
    return -1;
}

/* ---------- typed fields: null is absent ---------- */

static const lmc_json *field(const lmc_json *obj, const char *key)
{
    const lmc_json *j = lmc_json_get(obj, key);
    return j && j->type != LMC_JSON_NULL ? j : NULL;
}

static int get_num(const lmc_json *obj, const char *key, double lo, double hi, double *out, srv_error *e)
{
    const lmc_json *j = field(obj, key);
    if (!j)
        return 0;
    if (j->type != LMC_JSON_NUM)
        return bad(e, key, "'%s' must be a number", key);
    if (!(j->num >= lo && j->num <= hi))
        return bad(e, key, "'%s' is %g; it must be between %g and %g", key, j->num, lo, hi);
    *out = j->num;
    return 1;
}

static int get_int(const lmc_json *obj, const char *key, double lo, double hi, long long *out, srv_error *e)
{
    const lmc_json *j = field(obj, key);
    if (!j)
        return 0;
    if (j->type != LMC_JSON_NUM || j->num != floor(j->num))
        return bad(e, key, "'%s' must be an integer", key);
    if (!(j->num >= lo && j->num <= hi))
        return bad(e, key, "'%s' is %.17g; it must be between %.17g and %.17g", key, j->num, lo, hi);
    *out = (long long)j->num;
    return 1;
}

static int get_bool(const lmc_json *obj, const char *key, int *out, srv_error *e)
{
    const lmc_json *j = field(obj, key);
    if (!j)
        return 0;
    if (j->type != LMC_JSON_BOOL)
        return bad(e, key, "'%s' must be a boolean", key);
    *out = (int)j->num;
    return 1;
}

/* ---------- tokens ---------- */

typedef struct {
    int *v;
    int n, cap;
} ids_buf;

static int ids_push(ids_buf *b, const int *ids, size_t n, srv_error *e)
{
    if ((size_t)b->n + n > (size_t)1 << 28)
        return bad(e, NULL, "the prompt is too long");
    if ((size_t)b->n + n > (size_t)b->cap) {
        int cap = b->cap ? b->cap : 256;
        while ((size_t)cap < (size_t)b->n + n)
            cap *= 2;
        int *v = realloc(b->v, (size_t)cap * sizeof(int));
        if (!v) {
            srv_set_error(e, 500, "server_error", NULL, NULL, "out of memory");
            return -1;
        }
        b->v = v, b->cap = cap;
    }
    memcpy(b->v + b->n, ids, n * sizeof(int));
    b->n += (int)n;
    return 0;
}

static int encode_text(lmc_server *sv, ids_buf *b, const char *s, size_t n, srv_error *e)
{
    if (!n)
        return 0;
    int *ids = NULL;
    size_t k = 0;
    if (lmc_tok_encode(sv->tok, s, n, &ids, &k) != LMC_OK) {
        srv_set_error(e, 500, "server_error", NULL, NULL, "tokenizer: %s", lmc_errmsg());
        return -1;
    }
    int rc = ids_push(b, ids, k, e);
    free(ids);
    return rc;
}

/* A special token by id when the tokenizer has it, else its name as text. */
static int encode_special(lmc_server *sv, ids_buf *b, int id, const char *name, srv_error *e)
{
    return id >= 0 ? ids_push(b, &id, 1, e) : encode_text(sv, b, name, strlen(name), e);
}

static int ids_from_array(lmc_server *sv, const lmc_json *arr, ids_buf *b, srv_error *e)
{
    for (const lmc_json *c = arr->child; c; c = c->next) {
        if (c->type != LMC_JSON_NUM || c->num != floor(c->num))
            return bad(e, "prompt", "'prompt' must be a string, an array of strings, or an array of token ids");
        if (c->num < 0 || c->num >= sv->vocab)
            return bad(e, "prompt", "token id %.17g in 'prompt' is outside the vocabulary [0, %d)", c->num, sv->vocab);
        int id = (int)c->num;
        if (ids_push(b, &id, 1, e))
            return -1;
    }
    return 0;
}

static int parse_prompt(lmc_server *sv, const lmc_json *root, ids_buf *b, req_params *p, srv_error *e)
{
    const lmc_json *pr = field(root, "prompt");
    if (!pr)
        return bad(e, "prompt", "'prompt' is required");
    if (pr->type == LMC_JSON_ARR) {
        if (pr->n == 0)
            return bad(e, "prompt", "'prompt' must not be an empty array");
        const lmc_json *first = pr->child;
        if (first->type == LMC_JSON_NUM)
            return ids_from_array(sv, pr, b, e);
        if (pr->n > 1)
            return bad(e, "prompt", "one prompt per request: 'prompt' holds %d (send them as separate requests, "
                       "they are batched on the server)", pr->n);
        if (first->type == LMC_JSON_ARR)
            return first->n ? ids_from_array(sv, first, b, e) : bad(e, "prompt", "'prompt' is empty");
        pr = first;
    }
    if (pr->type != LMC_JSON_STR)
        return bad(e, "prompt", "'prompt' must be a string, an array of strings, or an array of token ids");
    if (p->echo) {
        p->echo_text = malloc(pr->slen + 1);
        if (p->echo_text)
            memcpy(p->echo_text, pr->str, pr->slen), p->echo_len = pr->slen;
    }
    return encode_text(sv, b, pr->str, pr->slen, e);
}

/* ChatML (docs/serving.md): for each message
 *   <|im_start|>ROLE\nCONTENT<|im_end|>\n
 * then <|im_start|>assistant\n. The markers are special tokens when the
 * tokenizer has them; message text is encoded as plain text, so a message
 * cannot forge a marker. */
static int message_content(const lmc_json *m, int i, const lmc_json **parts, srv_error *e)
{
    const lmc_json *c = field(m, "content");
    *parts = c;
    if (!c)
        return 0;
    if (c->type == LMC_JSON_STR)
        return 0;
    if (c->type != LMC_JSON_ARR)
        return bad(e, "messages", "messages[%d].content must be a string or an array of content parts", i);
    for (const lmc_json *part = c->child; part; part = part->next) {
        const lmc_json *t = field(part, "type"), *x = field(part, "text");
        if (part->type != LMC_JSON_OBJ || !t || t->type != LMC_JSON_STR)
            return bad(e, "messages", "messages[%d].content: each part must be an object with a 'type'", i);
        if (strcmp(t->str, "text"))
            return bad(e, "messages", "messages[%d].content: part type '%.40s' is not supported (text only)", i,
                       t->str);
        if (!x || x->type != LMC_JSON_STR)
            return bad(e, "messages", "messages[%d].content: a text part needs a string 'text'", i);
    }
    return 0;
}

static int parse_messages(lmc_server *sv, const lmc_json *root, ids_buf *b, srv_error *e)
{
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", NULL};
    const lmc_json *msgs = field(root, "messages");
    if (!msgs)
        return bad(e, "messages", "'messages' is required");
    if (msgs->type != LMC_JSON_ARR || msgs->n == 0)
        return bad(e, "messages", "'messages' must be a non-empty array");
    int i = 0;
    for (const lmc_json *m = msgs->child; m; m = m->next, i++) {
        if (m->type != LMC_JSON_OBJ)
            return bad(e, "messages", "messages[%d] must be an object", i);
        const lmc_json *role = field(m, "role"), *content;
        if (!role || role->type != LMC_JSON_STR)
            return bad(e, "messages", "messages[%d].role must be a string", i);
        int known = 0;
        for (int k = 0; roles[k]; k++)
            known |= !strcmp(role->str, roles[k]);
        if (!known)
            return bad(e, "messages", "messages[%d].role '%.40s' is not one of system, developer, user, assistant, "
                       "tool", i, role->str);
        if (message_content(m, i, &content, e))
            return -1;
        if (!content && strcmp(role->str, "assistant"))
            return bad(e, "messages", "messages[%d].content is required for role '%s'", i, role->str);
        if (encode_special(sv, b, sv->im_start_id, "<|im_start|>", e) ||
            encode_text(sv, b, role->str, role->slen, e) || encode_text(sv, b, "\n", 1, e))
            return -1;
        if (content && content->type == LMC_JSON_STR && encode_text(sv, b, content->str, content->slen, e))
            return -1;
        if (content && content->type == LMC_JSON_ARR)
            for (const lmc_json *part = content->child; part; part = part->next) {
                const lmc_json *x = field(part, "text");
                if (encode_text(sv, b, x->str, x->slen, e))
                    return -1;
            }
        if (encode_special(sv, b, sv->im_end_id, "<|im_end|>", e) || encode_text(sv, b, "\n", 1, e))
            return -1;
    }
    if (encode_special(sv, b, sv->im_start_id, "<|im_start|>", e) || encode_text(sv, b, "assistant\n", 10, e))
        return -1;
    return 0;
}

/* ---------- sampling, limits, stops ---------- */

static int parse_stop(const lmc_json *root, req_params *p, srv_error *e)
{
    const lmc_json *st = field(root, "stop");
    if (!st)
        return 0;
    const lmc_json *one = st->type == LMC_JSON_STR ? st : NULL;
    int n = one ? 1 : st->type == LMC_JSON_ARR ? st->n : -1;
    if (n < 0)
        return bad(e, "stop", "'stop' must be a string or an array of strings");
    if (n > 4)
        return bad(e, "stop", "'stop' holds %d strings; at most 4", n);
    p->stop = calloc((size_t)n + 1, sizeof(char *));
    if (!p->stop)
        return bad(e, "stop", "out of memory");
    const lmc_json *c = one ? one : st->child;
    for (int i = 0; i < n; i++, c = c->next) {
        if (c->type != LMC_JSON_STR)
            return bad(e, "stop", "'stop' must be a string or an array of strings");
        if (c->slen > 256 || strlen(c->str) != c->slen)
            return bad(e, "stop", "each stop string must be at most 256 bytes, without NUL");
        p->stop[p->n_stop++] = lmc_strdup(c->str);
    }
    return 0;
}

static int parse_bias(lmc_server *sv, const lmc_json *root, req_params *p, srv_error *e)
{
    const lmc_json *lb = field(root, "logit_bias");
    if (!lb)
        return 0;
    if (lb->type != LMC_JSON_OBJ)
        return bad(e, "logit_bias", "'logit_bias' must be an object mapping token ids to numbers");
    if (lb->n > 1024)
        return bad(e, "logit_bias", "'logit_bias' has %d entries; at most 1024", lb->n);
    p->bias_ids = malloc(((size_t)lb->n + 1) * sizeof(int));
    p->bias_vals = malloc(((size_t)lb->n + 1) * sizeof(float));
    if (!p->bias_ids || !p->bias_vals)
        return bad(e, "logit_bias", "out of memory");
    for (const lmc_json *c = lb->child; c; c = c->next) {
        char *end;
        long id = strtol(c->key, &end, 10);
        if (end == c->key || *end || id < 0 || id >= sv->vocab)
            return bad(e, "logit_bias", "logit_bias key '%.20s' is not a token id in [0, %d)", c->key, sv->vocab);
        if (c->type != LMC_JSON_NUM || !(c->num >= -100 && c->num <= 100))
            return bad(e, "logit_bias", "logit_bias values must be numbers in [-100, 100]");
        p->bias_ids[p->n_bias] = (int)id;
        p->bias_vals[p->n_bias++] = (float)c->num;
    }
    return 0;
}

static int parse_sampling(lmc_server *sv, const lmc_json *root, req_params *p, srv_error *e)
{
    double temp = 1, top_p = 1, freq = 0, pres = 0, rep = 1;
    long long top_k = 0, seed = 0, n = 1, best_of = 1, logprobs = 0;
    int lp_bool = 0;
    if (get_num(root, "temperature", 0, 2, &temp, e) < 0 || get_num(root, "top_p", 0, 1, &top_p, e) < 0 ||
        get_num(root, "frequency_penalty", -2, 2, &freq, e) < 0 ||
        get_num(root, "presence_penalty", -2, 2, &pres, e) < 0 ||
        get_num(root, "repetition_penalty", 1e-3, 100, &rep, e) < 0 ||
        get_int(root, "top_k", -1, 1 << 24, &top_k, e) < 0 || get_int(root, "n", 1, 128, &n, e) < 0 ||
        get_int(root, "best_of", 1, 128, &best_of, e) < 0)
        return -1;
    int has_seed = get_int(root, "seed", -9.2e18, 9.2e18, &seed, e);
    if (has_seed < 0)
        return -1;
    if (n != 1)
        return bad(e, "n", "'n' must be 1 (one choice per request)");
    if (best_of != 1)
        return bad(e, "best_of", "'best_of' must be 1");
    if (p->kind == EP_CHAT) {
        if (get_bool(root, "logprobs", &lp_bool, e) < 0)
            return -1;
    } else if (get_int(root, "logprobs", 0, 20, &logprobs, e) < 0) {
        return -1;
    }
    if (lp_bool || logprobs)
        return bad(e, "logprobs", "'logprobs' is not supported by this server");
    const lmc_json *suffix = field(root, "suffix");
    if (suffix && (suffix->type != LMC_JSON_STR || suffix->slen))
        return bad(e, "suffix", "'suffix' is not supported by this server");
    const lmc_json *user = field(root, "user");
    if (user && user->type != LMC_JSON_STR)
        return bad(e, "user", "'user' must be a string");
    /* top_p 0 means "only the most likely token", which the sampler's 0 (off) does not */
    p->sp = (lmc_sampling){(float)temp, top_k > 0 ? (int)top_k : 0, top_p > 0 ? (float)top_p : 1e-9f,
                           (float)rep, (float)freq, (float)pres};
    if (has_seed) {
        p->seed = (uint64_t)seed;
    } else {
        pthread_mutex_lock(&sv->mu);
        p->seed = lmc_hash64((uint64_t)(lmc_now() * 1e9) ^ (sv->next_id * 0x9e3779b97f4a7c15ull));
        pthread_mutex_unlock(&sv->mu);
    }
    return parse_stop(root, p, e) || parse_bias(sv, root, p, e) ? -1 : 0;
}

static int parse_stream(const lmc_json *root, req_params *p, srv_error *e)
{
    if (get_bool(root, "stream", &p->stream, e) < 0)
        return -1;
    const lmc_json *so = field(root, "stream_options");
    if (!so)
        return 0;
    if (so->type != LMC_JSON_OBJ)
        return bad(e, "stream_options", "'stream_options' must be an object");
    return get_bool(so, "include_usage", &p->include_usage, e) < 0 ? -1 : 0;
}

static int parse_limits(lmc_server *sv, const lmc_json *root, req_params *p, srv_error *e)
{
    long long max_tokens = -1;
    const char *which = "max_tokens";
    if (p->kind == EP_CHAT && field(root, "max_completion_tokens"))
        which = "max_completion_tokens";
    if (get_int(root, which, 1, 1e15, &max_tokens, e) < 0)
        return -1;
    const char *what = p->kind == EP_CHAT ? "messages" : "prompt";
    if (p->n_prompt >= sv->ctx || (max_tokens > 0 && p->n_prompt + max_tokens > sv->ctx)) {
        if (max_tokens > 0)
            srv_set_error(e, 400, "invalid_request_error", "context_length_exceeded", what,
                          "This model's maximum context length is %d tokens. However, you requested %lld tokens "
                          "(%d in the %s, %lld in the completion). Please reduce the length of the %s or "
                          "completion.", sv->ctx, p->n_prompt + max_tokens, p->n_prompt, what, max_tokens, what);
        else
            srv_set_error(e, 400, "invalid_request_error", "context_length_exceeded", what,
                          "This model's maximum context length is %d tokens. However, your %s resulted in %d "
                          "tokens, which leaves no room for the completion. Please reduce the length of the %s.",
                          sv->ctx, what, p->n_prompt, what);
        return -1;
    }
    long long room = sv->ctx - p->n_prompt;
    if (max_tokens < 0) /* OpenAI's defaults: 16 for completions, the rest of the context for chat */
        max_tokens = p->kind == EP_CHAT ? room : 16;
    if (max_tokens > room)
        max_tokens = room;
    if (max_tokens > sv->max_tokens)
        max_tokens = sv->max_tokens;
    p->max_new = (int)max_tokens;
    return 0;
}

static int check_model(lmc_server *sv, const lmc_json *root, srv_error *e)
{
    const lmc_json *m = field(root, "model");
    if (!m)
        return bad(e, "model", "'model' is required");
    if (m->type != LMC_JSON_STR)
        return bad(e, "model", "'model' must be a string");
    if (strcmp(m->str, sv->model_name)) {
        srv_set_error(e, 404, "invalid_request_error", "model_not_found", "model",
                      "The model '%.100s' does not exist; this server serves '%.100s'", m->str, sv->model_name);
        return -1;
    }
    return 0;
}

static int stop_tokens(lmc_server *sv, req_params *p)
{
    int ids[2], n = 0;
    if (sv->eot_id >= 0)
        ids[n++] = sv->eot_id;
    if (p->kind == EP_CHAT && sv->im_end_id >= 0)
        ids[n++] = sv->im_end_id;
    p->stop_ids = malloc(sizeof ids);
    if (!p->stop_ids)
        return -1;
    memcpy(p->stop_ids, ids, sizeof ids);
    p->n_stop_ids = n;
    if (p->kind == EP_CHAT && sv->im_end_id < 0 && p->n_stop < 5) {
        /* the end marker as text stops the reply when it is no special token */
        char **st = realloc(p->stop, ((size_t)p->n_stop + 2) * sizeof(char *));
        if (!st)
            return -1;
        p->stop = st;
        p->stop[p->n_stop++] = lmc_strdup("<|im_end|>");
    }
    return 0;
}

int srv_parse_request(lmc_server *sv, srv_endpoint kind, const char *body, size_t len, req_params *p,
                      srv_error *e)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    lmc_json *root = NULL;
    if (lmc_json_parse(body, len, "request body", &root) != LMC_OK) {
        srv_set_error(e, 400, "invalid_request_error", NULL, NULL,
                      "We could not parse the JSON body of your request: %s", lmc_errmsg());
        return -1;
    }
    ids_buf b = {0};
    int rc = -1;
    if (root->type != LMC_JSON_OBJ) {
        bad(e, NULL, "the request body must be a JSON object");
        goto done;
    }
    if (check_model(sv, root, e) || parse_stream(root, p, e) || parse_sampling(sv, root, p, e))
        goto done;
    if (kind == EP_COMPLETIONS && get_bool(root, "echo", &p->echo, e) < 0)
        goto done;
    if (kind == EP_CHAT ? parse_messages(sv, root, &b, e) : parse_prompt(sv, root, &b, p, e))
        goto done;
    if (b.n == 0) { /* an empty prompt starts a new document, as GPT-2 was trained */
        if (sv->eot_id < 0) {
            bad(e, "prompt", "'prompt' is empty");
            goto done;
        }
        if (ids_push(&b, &sv->eot_id, 1, e))
            goto done;
    }
    p->prompt = b.v, p->n_prompt = b.n;
    b.v = NULL;
    if (parse_limits(sv, root, p, e))
        goto done;
    if (stop_tokens(sv, p)) {
        srv_set_error(e, 500, "server_error", NULL, NULL, "out of memory");
        goto done;
    }
    rc = 0;
done:
    free(b.v);
    lmc_json_free(root);
    return rc;
}

void srv_params_free(req_params *p)
{
    for (int i = 0; i < p->n_stop; i++)
        free(p->stop[i]);
    free(p->stop), free(p->prompt), free(p->stop_ids), free(p->bias_ids), free(p->bias_vals), free(p->echo_text);
    memset(p, 0, sizeof *p);
}
