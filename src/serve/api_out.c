/* api_out.c: response bodies as OpenAI's API defines them: completion and
 * chat completion objects, their stream chunks, the model list. */
#include "serve/serve_internal.h"

#include <string.h>

const char *srv_finish_name(lmc_finish f)
{
    return f == LMC_FINISH_STOP ? "stop" : "length";
}

static void head(lmc_server *sv, const srv_req *r, lmc_sb *out, const char *object)
{
    lmc_sb_puts(out, "{\"id\":");
    lmc_sb_json_str(out, r->id, strlen(r->id));
    lmc_sb_printf(out, ",\"object\":\"%s\",\"created\":%lld,\"model\":", object, r->created);
    lmc_sb_json_str(out, sv->model_name, strlen(sv->model_name));
    lmc_sb_puts(out, ",\"system_fingerprint\":null");
}

static void usage(const srv_req *r, lmc_sb *out)
{
    lmc_sb_printf(out, "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}",
                  r->p.n_prompt, r->completion_tokens, r->p.n_prompt + r->completion_tokens);
}

/* the generated text, after the prompt when echo was asked for */
static void text_value(const srv_req *r, const char *text, size_t n, int with_echo, lmc_sb *out)
{
    if (!with_echo || !r->p.echo) {
        lmc_sb_json_str(out, text, n);
        return;
    }
    lmc_sb both;
    lmc_sb_init(&both);
    lmc_sb_put(&both, r->p.echo_text ? r->p.echo_text : "", r->p.echo_len);
    lmc_sb_put(&both, text, n);
    lmc_sb_json_str(out, both.s ? both.s : "", both.len);
    lmc_sb_free(&both);
}

void srv_completion_json(lmc_server *sv, const srv_req *r, lmc_sb *out)
{
    const char *fin = srv_finish_name(r->finish);
    const char *text = r->out.s ? r->out.s : "";
    if (r->p.kind == EP_CHAT) {
        head(sv, r, out, "chat.completion");
        lmc_sb_puts(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
        lmc_sb_json_str(out, text, r->out.len);
        lmc_sb_printf(out, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"%s\"}],", fin);
    } else {
        head(sv, r, out, "text_completion");
        lmc_sb_puts(out, ",\"choices\":[{\"text\":");
        text_value(r, text, r->out.len, 1, out);
        lmc_sb_printf(out, ",\"index\":0,\"logprobs\":null,\"finish_reason\":\"%s\"}],", fin);
    }
    usage(r, out);
    lmc_sb_puts(out, "}");
}

/* One server-sent event. role: the first chat chunk (role, empty content);
 * finish: the last chunk's reason, or NULL. */
void srv_chunk_json(lmc_server *sv, const srv_req *r, const char *text, size_t n, int role, const char *finish,
                    lmc_sb *out)
{
    lmc_sb_puts(out, "data: ");
    if (r->p.kind == EP_CHAT) {
        head(sv, r, out, "chat.completion.chunk");
        lmc_sb_puts(out, ",\"choices\":[{\"index\":0,\"delta\":{");
        if (role)
            lmc_sb_puts(out, "\"role\":\"assistant\",\"content\":\"\"");
        else if (n || !finish) {
            lmc_sb_puts(out, "\"content\":");
            lmc_sb_json_str(out, text, n);
        }
        lmc_sb_puts(out, "},\"logprobs\":null,\"finish_reason\":");
    } else {
        head(sv, r, out, "text_completion");
        lmc_sb_puts(out, ",\"choices\":[{\"text\":");
        text_value(r, text, n, role, out);
        lmc_sb_puts(out, ",\"index\":0,\"logprobs\":null,\"finish_reason\":");
    }
    if (finish)
        lmc_sb_printf(out, "\"%s\"}]", finish);
    else
        lmc_sb_puts(out, "null}]");
    if (r->p.include_usage)
        lmc_sb_puts(out, ",\"usage\":null");
    lmc_sb_puts(out, "}\n\n");
}

void srv_usage_chunk(lmc_server *sv, const srv_req *r, lmc_sb *out)
{
    lmc_sb_puts(out, "data: ");
    head(sv, r, out, r->p.kind == EP_CHAT ? "chat.completion.chunk" : "text_completion");
    lmc_sb_puts(out, ",\"choices\":[],");
    usage(r, out);
    lmc_sb_puts(out, "}\n\n");
}

static void model_obj(lmc_server *sv, lmc_sb *out)
{
    lmc_sb_puts(out, "{\"id\":");
    lmc_sb_json_str(out, sv->model_name, strlen(sv->model_name));
    const lmc_model_config *c = lmc_engine_config(sv->engine);
    lmc_sb_printf(out, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"lmc\",\"context_length\":%d,"
                  "\"family\":\"%s\",\"slots\":%d}",
                  (long long)sv->metrics.started, sv->ctx, c->family, sv->slots);
}

void srv_models_json(lmc_server *sv, lmc_sb *out, const char *only)
{
    if (only) {
        model_obj(sv, out);
        return;
    }
    lmc_sb_puts(out, "{\"object\":\"list\",\"data\":[");
    model_obj(sv, out);
    lmc_sb_puts(out, "]}");
}
