/* The C API is implemented in Swift (Sources/MoECAPI) with @c @implementation. */
