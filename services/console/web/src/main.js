import { createApp } from 'vue'
import ElementPlus from 'element-plus'
import zhCn from 'element-plus/es/locale/lang/zh-cn.mjs'
import 'element-plus/dist/index.css'
import './style.css'
import App from './App.vue'
import { router } from './router.js'
import ErrorPanel from './components/ErrorPanel.vue'
import PagedTable from './components/PagedTable.vue'
import DueDate from './components/DueDate.vue'
import IdentityFilters from './components/IdentityFilters.vue'

const app = createApp(App)
app.use(ElementPlus, { locale: zhCn })
app.use(router)
app.component('ErrorPanel', ErrorPanel)
app.component('PagedTable', PagedTable)
app.component('DueDate', DueDate)
app.component('IdentityFilters', IdentityFilters)
app.mount('#app')
