/* A JSON POST over libcurl for endpoints lfl calls as a client (PPO's
 * reward_model_type api: LlamaFactory's /v1/score/evaluation). */
#ifndef LFL_HUB_POST_H
#define LFL_HUB_POST_H

#include <stddef.h>
#include "../status.h"

/* POSTs body (application/json) to an http(s) url; waits at most timeout_s
 * seconds. On a transfer, *status is the HTTP status and *resp the body
 * (malloc'd, NUL-terminated, at most max_bytes, else an error); a failed
 * connection or transfer is an error naming the url and curl's reason. */
lfl_status lfl_http_post_json(const char *url, const char *body, long timeout_s, size_t max_bytes, long *status,
                              char **resp);

#endif
