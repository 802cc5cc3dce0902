/*
 * Test "plugin" without the hostwatch_plugin_v1 entry symbol (tests/plugins.rs): a valid
 * shared library that hostwatch must refuse by name.
 */
int not_a_hostwatch_plugin(int x);

int not_a_hostwatch_plugin(int x)
{
    return x + 1;
}
