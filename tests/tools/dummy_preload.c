/* A shared library that does nothing: the end-to-end tests point XPU_SHIM_LIBRARY at it so that
 * xpu-run's LD_PRELOAD is loadable by ordinary (non-CUDA) test commands. */
int xpu_run_dummy_preload_marker(void);
int xpu_run_dummy_preload_marker(void) { return 0; }
