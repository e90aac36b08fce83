/* Values over connections: one CBOR-encoded value per message. */
#include "base/base.h"
#include "value/value.h"
#include "mproc/conn.h"

#include <stdlib.h>

int mproc_conn_send_value(mproc_conn *c, const struct mproc_value *v)
{
    if (!c || !v) return MPROC_EINVAL;
    void *buf;
    size_t len;
    int rc = mproc_value_encode(v, &buf, &len);
    if (rc) return rc;
    rc = mproc_conn_send_bytes(c, buf, len);
    free(buf);
    return rc;
}

int mproc_conn_recv_value(mproc_conn *c, struct mproc_value **out, int timeout_ms)
{
    if (!c || !out) return MPROC_EINVAL;
    void *buf;
    size_t len;
    int rc = mproc_conn_recv_bytes(c, &buf, &len, timeout_ms);
    if (rc) return rc;
    /* The message is consumed whether or not it decodes. */
    rc = mproc_value_decode(buf, len, NULL, out);
    free(buf);
    return rc;
}
