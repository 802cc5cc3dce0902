/*
 * Test plugin built for another ABI version (tests/plugins.rs): by default it exports the
 * v1 entry symbol but its table says version 2; built with -DENTRY=hostwatch_plugin_v2 it
 * exports only the v2 symbol. hostwatch must refuse both before calling anything.
 */
#include "hostwatch_plugin.h"

#ifndef ENTRY
#define ENTRY hostwatch_plugin_v1
#endif

static hostwatch_status never_init(hostwatch_str config, void **context, hostwatch_error *error)
{
    (void)config;
    (void)context;
    hostwatch_error_write(error, "init must not be called", 23);
    return HOSTWATCH_STATUS_PERMANENT;
}

static hostwatch_status never_notify(void *context, const hostwatch_event *event,
                                     hostwatch_error *error)
{
    (void)context;
    (void)event;
    (void)error;
    return HOSTWATCH_STATUS_PERMANENT;
}

static void never_shutdown(void *context)
{
    (void)context;
}

static const hostwatch_plugin table = {2u, {"wrong-abi", 9}, never_init, never_notify,
                                       never_shutdown};

HOSTWATCH_PLUGIN_EXPORT const hostwatch_plugin *ENTRY(void);

HOSTWATCH_PLUGIN_EXPORT const hostwatch_plugin *ENTRY(void)
{
    return &table;
}
