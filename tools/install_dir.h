/* install_dir.h: where the tool finds the files it ships (install_dir.c). */
#ifndef WREF_TOOLS_INSTALL_DIR_H
#define WREF_TOOLS_INSTALL_DIR_H

/* The first of these directories that holds a readable `probe` file, or NULL; malloc'd:
 *   1. source_dir, when this executable lives in build_tools_dir (the build tree's tool; both
 *      must be non-empty);
 *   2. <the executable's directory>/../<rel_dir> (an install moved as a whole), normalized;
 *   3. full_dir (the configured install's absolute directory).
 * python_env.c finds the pytest plugin with it, report/cli.c the docs SARIF links point at. */
char *wref_tool_install_dir(const char *build_tools_dir, const char *source_dir, const char *rel_dir,
                            const char *full_dir, const char *probe);

#endif /* WREF_TOOLS_INSTALL_DIR_H */
