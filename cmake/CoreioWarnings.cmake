# coreio_warnings(target): the project's warning set, errors when COREIO_WERROR.
function(coreio_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
                                           $<$<BOOL:${COREIO_WERROR}>:-Werror>)
endfunction()
