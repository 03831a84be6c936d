_tollgate_completion() {
    local IFS=$'\n'
    COMPREPLY=( $( env COMP_WORDS="${COMP_WORDS[*]}" \
                   COMP_CWORD=$COMP_CWORD \
                   _TOLLGATE_COMPLETE=complete_bash $1 ) )
    return 0
}

complete -o default -o nosort -F _tollgate_completion tollgate
